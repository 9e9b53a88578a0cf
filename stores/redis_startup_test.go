package stores_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// TestRedisStartupErrorsNameTheProblem checks the start-up errors of
// misconfigurations that used to start, or to fail with a message about
// something else: a master name the sentinels do not know, a host list in
// redis://, a redis:// URL naming one node of a Redis Cluster.
func TestRedisStartupErrorsNameTheProblem(t *testing.T) {
	sentinels, _ := servertest.RedisSentinelAddrs(t)
	node := servertest.RedisClusterAddrs(t)[0]
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"nok, master unknown to the sentinels", "redis+sentinel://" + strings.Join(sentinels, ",") + "/nosuchmaster",
			[]string{`no master named "nosuchmaster"`}},
		{"nok, host list in redis://", "redis://127.0.0.1:1,127.0.0.1:2/0", []string{"several servers", "redis+cluster://", "redis+sentinel://"}},
		{"nok, host list in rediss://", "rediss://h1:6380,h2:6380/0", []string{"several servers", "rediss+cluster://"}},
		{"nok, host list without ports", "redis://a,b/0", []string{"several servers"}},
		{"nok, a cluster node in redis://", "redis://" + node + "/0", []string{"node of a Redis Cluster", "redis+cluster://" + node}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.OpenAndPing(t.Context(), tt.url)
			if err == nil {
				s.Close()
			}
			require.Error(t, err, "OpenAndPing(%q)", tt.url)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w, "OpenAndPing(%q)", tt.url)
			}
		})
	}
}
