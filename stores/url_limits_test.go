package stores_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// TestOpenNumericParamsOutOfRange gives every numeric parameter of every
// scheme values that are negative, zero where zero would silently mean a
// default, past what the client library holds (go-redis panics on pool
// sizes past an int32), or not numbers: Open returns an error naming the
// parameter, and never panics. Open contacts no server, so the addresses
// are never dialled.
func TestOpenNumericParamsOutOfRange(t *testing.T) {
	dir := t.TempDir()
	redisOwn := map[string][]string{
		"default_ttl":    {"-1s", "-5", "x"},
		"max_value_size": {"0", "-1", "x"},
		"dial_timeout":   {"0", "0s", "-1s", "1h1s", "1h1000000h"},
		"read_timeout":   {"0", "-1s", "2h"},
		"write_timeout":  {"0", "-1ms", "3601"},
		"pool_size":      {"0", "-1", "10001", "1003000000", "3000000000", "99999999999999999999"},
		"local":          {"0", "-1"},
		"local_max_age":  {"0", "-1s"},
	}
	goRedis := map[string][]string{
		"protocol":                   {"0", "1", "4", "-1"},
		"max_redirects":              {"-5", "0", "1001", "3000000000"},
		"max_retries":                {"-2", "0", "1001"},
		"dialer_retries":             {"-1", "0", "1001"},
		"max_concurrent_dials":       {"-1", "0", "3000000000"},
		"min_idle_conns":             {"-1", "3000000000"},
		"max_idle_conns":             {"-4", "3000000000"},
		"max_active_conns":           {"-1", "3000000000"},
		"pipeline_pool_size":         {"-2", "0", "3000000000"},
		"pipeline_read_buffer_size":  {"-1", "0", "67108865", "3000000000"},
		"pipeline_write_buffer_size": {"-1", "0", "3000000000"},
		"failing_timeout_seconds":    {"-1", "0"},
		"min_retry_backoff":          {"-1s", "x", "61s"},
		"max_retry_backoff":          {"-1ms", "2m"},
		"dialer_retry_timeout":       {"0", "-1s", "1h1ms"},
		"pool_timeout":               {"0", "-3s", "1h1000000h", "2562047h"},
		"conn_max_lifetime":          {"-1s", "25h"},
		"conn_max_lifetime_jitter":   {"-1s", "100000h"},
		"conn_max_idle_time":         {"-1s", "24h1s"},
	}
	memcached := map[string][]string{
		"default_ttl":    {"-1s"},
		"timeout":        {"0", "-1s"},
		"max_item_size":  {"0", "512", "-1", "3GiB"},
		"max_value_size": {"0", "-1"},
		"max_idle_conns": {"0", "-4", "3000000000"},
		"local":          {"0"},
		"local_max_age":  {"0"},
	}
	merge := func(ms ...map[string][]string) map[string][]string {
		out := map[string][]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	schemes := []struct {
		base   string // ends with ? or &
		params map[string][]string
	}{
		{"redis://127.0.0.1:1/0?", redisOwn},
		{"rediss://127.0.0.1:1/0?", redisOwn},
		{"redis+cluster://127.0.0.1:1/?", merge(redisOwn, goRedis)},
		{"rediss+cluster://127.0.0.1:1/?", merge(redisOwn, goRedis)},
		{"redis+sentinel://127.0.0.1:1/mymaster?", merge(redisOwn, goRedis)},
		{"rediss+sentinel://127.0.0.1:1/mymaster?", merge(redisOwn, goRedis)},
		{"memcached://127.0.0.1:1?", memcached},
		{"memcached://127.0.0.1:1?protocol=ascii&", memcached},
		{"saslmemcached://u:p@127.0.0.1:1?", memcached},
		{"file://" + filepath.ToSlash(dir) + "?", map[string][]string{
			"max_entries":   {"-1", "x", "99999999999999999999"},
			"default_ttl":   {"-1s"},
			"local":         {"0"},
			"local_max_age": {"0"},
		}},
		{"memory://?", map[string][]string{
			"max_bytes":   {"0", "-1", "9999EB"},
			"max_entries": {"-1"},
			"default_ttl": {"-1s"},
		}},
		{"null://?", map[string][]string{"default_ttl": {"-1s"}}},
	}
	for _, sc := range schemes {
		for name, values := range sc.params {
			for _, v := range values {
				raw := sc.base + name + "=" + url.QueryEscape(v)
				if strings.HasPrefix(name, "local_max_age") {
					raw += "&local=1MiB"
				}
				t.Run(fmt.Sprintf("nok, %s", raw), func(t *testing.T) {
					s, err := openNoPanic(t, raw)
					if err == nil {
						s.Close()
					}
					require.Error(t, err, "Open(%q)", raw)
					assert.Contains(t, err.Error(), name, "Open(%q): the error names the parameter", raw)
				})
			}
		}
	}
}

// openNoPanic is stores.Open, with a panic reported as a test failure.
func openNoPanic(t *testing.T, raw string) (s stores.Store, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open(%q) panicked: %v", raw, r)
		}
	}()
	return stores.Open(t.Context(), raw)
}

// TestOpenParamsInRange checks values at the edges of what is accepted:
// go-redis's -1 for "none", a zero that has a documented meaning.
func TestOpenParamsInRange(t *testing.T) {
	dir := filepath.ToSlash(t.TempDir())
	for _, raw := range []string{
		"redis+cluster://127.0.0.1:1/?max_redirects=-1&max_retries=-1&min_idle_conns=0&max_idle_conns=0&conn_max_idle_time=0&pool_size=10000",
		"redis+sentinel://127.0.0.1:1/m?max_retries=-1&pipeline_pool_size=-1&min_retry_backoff=0&protocol=2",
		"redis://127.0.0.1:1/0?default_ttl=0&pool_size=1&read_timeout=1ms",
		"memcached://127.0.0.1:1?default_ttl=0&max_item_size=513&max_idle_conns=1&timeout=1ms",
		"file://" + dir + "?max_entries=0&default_ttl=0",
		"memory://?max_entries=0&max_bytes=1MiB",
	} {
		t.Run("ok, "+raw, func(t *testing.T) {
			s, err := stores.Open(t.Context(), raw)
			require.NoError(t, err, "Open(%q)", raw)
			require.NoError(t, s.Close())
		})
	}
}

// TestOpenServerListedTwice checks that a memcached server written two
// ways (a leading zero in the port, the default port written or not, the
// case of the host) is caught as listed twice.
func TestOpenServerListedTwice(t *testing.T) {
	for _, raw := range []string{
		"memcached://h:11211,h:011211",
		"memcached://h,h:11211",
		"memcached://Cache.Example:11211,cache.example:11211",
		"saslmemcached://u:p@10.0.0.1:11211,10.0.0.1:0011211",
	} {
		t.Run("nok, "+raw, func(t *testing.T) {
			s, err := stores.Open(t.Context(), raw)
			if err == nil {
				s.Close()
			}
			require.ErrorContains(t, err, "listed twice", "Open(%q)", raw)
		})
	}
}

// TestOpenFileRootRefused checks that the file store refuses the root
// directory, which would get its namespace directories (/ns-...) in the
// filesystem root.
func TestOpenFileRootRefused(t *testing.T) {
	for _, raw := range []string{"file:///", "file:///..", "file://localhost/", "file:/"} {
		t.Run("nok, "+raw, func(t *testing.T) {
			s, err := stores.Open(t.Context(), raw)
			if err == nil {
				s.Close()
			}
			require.ErrorContains(t, err, "root", "Open(%q)", raw)
		})
	}
	_, err := stores.NewFile(stores.FileConfig{Dir: "/"})
	require.ErrorContains(t, err, "root")
}
