package stores_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// TestRedisClusterSentinelURLErrors checks that every bad part of a
// cluster or sentinel URL is refused with an error that names it, and
// that no password is ever echoed.
func TestRedisClusterSentinelURLErrors(t *testing.T) {
	const c = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
	const s = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380"
	tests := []struct {
		name, url string
		want      []string
	}{
		{"nok, cluster without address", "redis+cluster:///?prefix=a:", []string{"no address"}},
		{"nok, cluster address without port", "redis+cluster://127.0.0.1:7000,cachehost,127.0.0.1:7001/", []string{`address "cachehost"`, "host:port"}},
		{"nok, cluster last address without port", "redis+cluster://127.0.0.1:7000,cachehost/", []string{"invalid port"}},
		{"nok, cluster address with empty host", "redis+cluster://:7000/", []string{`address ":7000"`, "host:port"}},
		{"nok, cluster port 0", "redis+cluster://127.0.0.1:0/", []string{`bad port "0"`}},
		{"nok, cluster port too large", "redis+cluster://127.0.0.1:7000,127.0.0.1:70000/", []string{`bad port "70000"`}},
		{"nok, cluster empty address", "redis+cluster://127.0.0.1:7000,,127.0.0.1:7001/", []string{`address ""`}},
		{"nok, cluster database", c + "/3", []string{`path "/3"`, "only database 0"}},
		{"nok, cluster db parameter", c + "/?db=2", []string{"db", "only database 0"}},
		{"nok, cluster read_only", c + "/?read_only=true", []string{"read_only", "replica"}},
		{"nok, cluster route_by_latency", c + "/?route_by_latency=true", []string{"route_by_latency", "replica"}},
		{"nok, cluster route_randomly", c + "/?route_randomly=1", []string{"route_randomly", "replica"}},
		{"nok, cluster unknown parameter", c + "/?prefx=a:", []string{`unknown parameter "prefx"`}},
		{"nok, cluster replica_only", c + "/?replica_only=true", []string{"replica_only"}},
		{"nok, cluster empty prefix", c + "/?prefix=", []string{"prefix is empty"}},
		{"nok, cluster bad default_ttl", c + "/?default_ttl=soon", []string{"default_ttl", `"soon"`}},
		{"nok, cluster negative read_timeout", c + "/?read_timeout=-1s", []string{"read_timeout", `"-1s"`}},
		{"nok, cluster bad go-redis duration", c + "/?pool_timeout=soon", []string{"pool_timeout"}},
		{"nok, cluster bad go-redis integer", c + "/?max_redirects=many", []string{"max_redirects"}},
		{"nok, cluster repeated go-redis parameter", c + "/?max_redirects=1&max_redirects=2", []string{"max_redirects", "given 2 times"}},
		{"nok, cluster bad addr parameter", c + "/?addr=nowhere", []string{"addr", `"nowhere"`, "host:port"}},
		{"nok, cluster skip_verify without TLS", c + "/?skip_verify=true", []string{"skip_verify is for TLS", "rediss+cluster://"}},
		{"nok, cluster bad skip_verify", "rediss+cluster://127.0.0.1:7000/?skip_verify=maybe", []string{"skip_verify", `"maybe"`}},
		{"nok, redis skip_verify without TLS", "redis://127.0.0.1:6379/0?skip_verify=true", []string{"skip_verify is for TLS", "rediss://"}},
		{"nok, cluster fragment", c + "/#x", []string{"fragment"}},
		{"nok, cluster opaque", "redis+cluster:127.0.0.1:7000", []string{"opaque"}},
		{"nok, cluster hash tag prefix", c + "/?prefix=%7Bapp%7D:", []string{"hash tag {app}"}},

		{"nok, sentinel without master", s + "/?prefix=a:", []string{`path "/"`, "no master name", "MASTER_NAME"}},
		{"nok, sentinel without path", s, []string{"no master name"}},
		{"nok, sentinel bad database", s + "/mymaster/zero", []string{`database "zero"`}},
		{"nok, sentinel negative database", s + "/mymaster/-1", []string{`database "-1"`}},
		{"nok, sentinel too many segments", s + "/mymaster/0/1", []string{"too many segments"}},
		{"nok, sentinel trailing slash", s + "/mymaster/", []string{`database ""`}},
		{"nok, sentinel address without port", "redis+sentinel://sentinelhost,127.0.0.1:26379/mymaster", []string{`address "sentinelhost"`}},
		{"nok, sentinel master_name", s + "/mymaster?master_name=other", []string{"master_name", "/MASTER_NAME"}},
		{"nok, sentinel db parameter", s + "/mymaster?db=1", []string{"db", "/MASTER_NAME/DB"}},
		{"nok, sentinel password parameter", s + "/mymaster?password=x", []string{"password", "user:pass@"}},
		{"nok, sentinel username parameter", s + "/mymaster?username=x", []string{"username", "user:pass@"}},
		{"nok, sentinel replica_only", s + "/mymaster?replica_only=true", []string{"replica_only", "replica"}},
		{"nok, sentinel use_disconnected_replicas", s + "/mymaster?use_disconnected_replicas=true", []string{"use_disconnected_replicas"}},
		{"nok, sentinel route_randomly", s + "/mymaster?route_randomly=true", []string{"route_randomly"}},
		{"nok, sentinel unknown parameter", s + "/mymaster?sentinel_pass=x", []string{`unknown parameter "sentinel_pass"`}},
		{"nok, sentinel username without password", s + "/mymaster?sentinel_username=u", []string{"sentinel_username without sentinel_password"}},
		{"nok, sentinel repeated sentinel_password", s + "/mymaster?sentinel_password=a&sentinel_password=b", []string{"sentinel_password given 2 times"}},
		{"nok, sentinel skip_verify without TLS", s + "/mymaster?skip_verify=true", []string{"skip_verify is for TLS", "rediss+sentinel://"}},
		{"nok, sentinel bad go-redis boolean", "rediss+sentinel://127.0.0.1:26379/mymaster?skip_verify=maybe", []string{"skip_verify"}},
		{"nok, sentinel bad pool_size", s + "/mymaster?pool_size=-3", []string{"pool_size", `"-3"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := stores.Open(t.Context(), tt.url)
			require.Error(t, err, "Open(%q)", tt.url)
			assert.Nil(t, st)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w, "Open(%q): the error must name the problem", tt.url)
			}
		})
	}

	for _, ok := range []string{
		c,
		c + "/",
		c + "/?prefix=app:&default_ttl=5m&dial_timeout=2s&read_timeout=1s&write_timeout=1s&pool_size=8&max_value_size=1MiB",
		c + "/?max_redirects=5&min_retry_backoff=10ms&pool_timeout=1s&client_name=app&protocol=2",
		"redis+cluster://user:pass@127.0.0.1:7000/?addr=127.0.0.1:7001&addr=[::1]:7002",
		"redis+cluster://[::1]:7000/?addr=[::1]:7001",
		"rediss+cluster://cache-0.example.com:6380,cache-1.example.com:6380/?prefix=app:",
		"REDIS+CLUSTER://127.0.0.1:7000",
		s + "/mymaster",
		s + "/mymaster/3?prefix=app:&default_ttl=5m",
		s + "/mymaster?addr=127.0.0.1:26381&pool_timeout=1s&client_name=app",
		"redis+sentinel://user:pass@127.0.0.1:26379/my%20master?sentinel_username=s&sentinel_password=p",
		"redis+sentinel://127.0.0.1:26379/mymaster?sentinel_password=p",
		"rediss+sentinel://sentinel.example.com:26379/mymaster?skip_verify=true",
		"rediss+cluster://cache-0.example.com:6380/?skip_verify=true",
		"rediss://cache.example.com:6380/0?skip_verify=true",
		"rediss+cluster://127.0.0.1:7000/?pool_timeout=1h&conn_max_lifetime=24h&max_retry_backoff=1m",
	} {
		t.Run("ok, "+ok, func(t *testing.T) {
			st, err := stores.Open(t.Context(), ok)
			require.NoError(t, err, "Open(%q)", ok)
			require.NoError(t, st.Close())
		})
	}
}

func TestRedisClusterSentinelURLNeverEchoesPasswords(t *testing.T) {
	const secret = "hunter2-secret"
	for _, u := range []string{
		"redis+cluster://user:" + secret + "@127.0.0.1:7000,nohost/",
		"redis+cluster://user:" + secret + "@127.0.0.1:7000/?bogus=1",
		"redis+cluster://user:" + secret + "@127.0.0.1:7000/?pool_timeout=x",
		"redis+sentinel://user:" + secret + "@127.0.0.1:26379/?prefix=a:",
		"redis+sentinel://127.0.0.1:26379/m?sentinel_password=" + secret + "&sentinel_password=" + secret,
		"redis+sentinel://127.0.0.1:26379/m?sentinel_password=" + secret + "&bogus=1",
		"redis+sentinel://127.0.0.1:26379/m?sentinel_password=" + secret + "&pool_timeout=x",
		"rediss+sentinel://user:" + secret + "@127.0.0.1:26379/m?skip_verify=x",
	} {
		_, err := stores.Open(t.Context(), u)
		require.Error(t, err, "Open(%q)", u)
		assert.NotContains(t, err.Error(), secret, "Open(%q) echoed the password", u)
	}
}
