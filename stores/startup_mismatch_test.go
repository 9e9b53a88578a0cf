package stores_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// TestStartupProtocolMismatchesNameTheProblem: a URL whose scheme asks
// for a protocol the server does not speak fails at start-up, on one
// line, with a message saying so and naming the scheme to use, never
// showing the password: TLS to a plain-text redis, or to a server that
// answers in plain text; sentinels that answer but know no master by the
// name; SASL to a memcached with ASCII authentication, and the reverse.
func TestStartupProtocolMismatchesNameTheProblem(t *testing.T) {
	plainRedis, err := url.Parse(servertest.Redis(t))
	require.NoError(t, err)
	sentinels, _ := servertest.RedisSentinelAddrs(t)
	ascii, err := url.Parse(servertest.MemcachedAuth(t))
	require.NoError(t, err)
	sasl, err := url.Parse(servertest.MemcachedSASL(t))
	require.NoError(t, err)
	asciiPass, _ := ascii.User.Password()
	saslPass, _ := sasl.User.Password()
	withScheme := func(u *url.URL, scheme string) string {
		v := *u
		v.Scheme = scheme
		return v.String()
	}
	tests := []struct {
		name, url string
		want      []string
		password  string
	}{
		{"nok, rediss:// to a plain-text redis", "rediss://" + plainRedis.Host + "/0",
			[]string{"TLS handshake", "does not speak TLS", "redis://"}, ""},
		{"nok, rediss:// to a server that answers in plain text", "rediss://" + servertest.Memcached(t) + "/0",
			[]string{"TLS handshake", "does not speak TLS", "redis://"}, ""},
		{"nok, rediss+cluster:// to a plain-text cluster", "rediss+cluster://" + servertest.RedisClusterAddrs(t)[0] + "/",
			[]string{"TLS", "speak TLS"}, ""},
		{"nok, master unknown to the sentinels", "redis+sentinel://" + strings.Join(sentinels, ",") + "/nosuch",
			[]string{`the sentinels answered but know no master named "nosuch"`, "3 of 3"}, ""},
		{"nok, saslmemcached:// to an ASCII-authentication server", withScheme(ascii, "saslmemcached"),
			[]string{"did not answer the SASL handshake", "ASCII authentication", "memcached://"}, asciiPass},
		{"nok, memcached:// with credentials to a SASL server", withScheme(sasl, "memcached"),
			[]string{"ASCII authentication", "may expect SASL", "saslmemcached://"}, saslPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.OpenAndPing(t.Context(), tt.url)
			if err == nil {
				s.Close()
			}
			require.Error(t, err, "OpenAndPing(%q)", tt.url)
			msg := err.Error()
			t.Log(msg)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			assert.NotContains(t, msg, "\n", "the message is one line")
			assert.NotContains(t, msg, "unreachable")
			if tt.password != "" {
				assert.NotContains(t, msg, tt.password, "the message shows the password")
			}
		})
	}
}
