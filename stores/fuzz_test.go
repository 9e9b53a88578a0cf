package stores_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/echocache/echocache/stores"
)

// FuzzOpenURL: Open never panics on a malformed or hostile URL, and its
// errors never repeat a password. The file scheme is left out: it creates
// directories. Open contacts no server, so redis and memcached URLs are
// only parsed.
func FuzzOpenURL(f *testing.F) {
	for _, seed := range []string{
		"memory://?max_bytes=64MiB&max_entries=10", "memory://?max_bytes=2M&max_bytes=3M", "null://?prefix=a",
		"redis://user:hunter2@127.0.0.1:6379/0?prefix=app:", "redis://:hunter2@[::1]:6379/99", "rediss://h/0?dial_timeout=1s",
		"memcached://127.0.0.1:11211,127.0.0.1:11212?max_item_size=2MiB", "memcached://u:hunter2@h:99999",
		"memory://?max_bytes=-1", "memory://?max_bytes=9999EB", "redis://%zz", "memory://h/p?x=%", "null:",
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
