package stores_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
)

// FuzzOpenURL: Open never panics on a malformed or hostile URL, and its
// errors never repeat a password. The file scheme is left out: it creates
// directories (FuzzFileURL fuzzes its parser). Open contacts no server, so redis and memcached URLs are
// only parsed.
func FuzzOpenURL(f *testing.F) {
	for _, seed := range []string{
		"memory://?max_bytes=64MiB&max_entries=10", "memory://?max_bytes=2M&max_bytes=3M", "null://?prefix=a",
		"redis://user:hunter2@127.0.0.1:6379/0?prefix=app:", "redis://:hunter2@[::1]:6379/99", "rediss://h/0?dial_timeout=1s",
		"memcached://127.0.0.1:11211,127.0.0.1:11212?max_item_size=2MiB", "memcached://u:hunter2@h:99999",
		"memory://?max_bytes=-1", "memory://?max_bytes=9999EB", "redis://%zz", "memory://h/p?x=%", "null:",
		"redis://h/0?pool_size=3000000000", "redis+sentinel://h:1/m?pool_size=3000000000&min_idle_conns=-1",
		"redis+cluster://h:1/?pool_size=3000000000&max_redirects=-5", "memcached://h:11211,h:011211?max_idle_conns=-4",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if scheme, _, ok := strings.Cut(raw, ":"); ok && strings.EqualFold(strings.TrimSpace(scheme), "file") {
			return
		}
		s, err := stores.Open(t.Context(), raw)
		if err != nil {
			// The password, when the URL has one and it appears nowhere else.
			if u, perr := url.Parse(raw); perr == nil && u.User != nil && strings.Count(raw, "hunter2") == 1 {
				if pw, _ := u.User.Password(); pw == "hunter2" && strings.Contains(err.Error(), pw) {
					t.Fatalf("Open(%q) error %q repeats the password", raw, err)
				}
			}
			return
		}
		_ = s.Close()
	})
}

// FuzzOpenRedisQuery: a redis store opened from any query, on every redis
// form, neither panics in Open nor in its first call (go-redis builds a
// cluster's node pools on the first call, and panics there on sizes it
// cannot hold). The address is a closed loopback port: the call fails at
// once.
func FuzzOpenRedisQuery(f *testing.F) {
	for _, seed := range []string{
		"pool_size=3000000000", "pool_size=10&max_redirects=-5", "max_idle_conns=-4", "pipeline_pool_size=3000000000",
		"min_idle_conns=2147483648", "pool_timeout=0", "read_timeout=0", "protocol=9", "max_active_conns=99999999999",
	} {
		for form := range uint8(3) {
			f.Add(form, seed)
		}
	}
	bases := []string{"redis://127.0.0.1:1/0?", "redis+cluster://127.0.0.1:1/?", "redis+sentinel://127.0.0.1:1/m?"}
	f.Fuzz(func(t *testing.T, form uint8, query string) {
		raw := bases[int(form)%len(bases)] + query
		if u, err := url.Parse(raw); err != nil || u.Hostname() != "127.0.0.1" {
			return // the query moved the host: not this target's concern
		}
		if q, err := url.ParseQuery(strings.SplitN(raw, "?", 2)[1]); err != nil || q.Has("addr") || q.Has("local") {
			return // other addresses to dial, or a tier in front
		}
		s, err := stores.Open(t.Context(), raw)
		if err != nil {
			return
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, _ = s.Get(ctx, "k")
	})
}
