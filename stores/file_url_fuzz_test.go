package stores

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzFileURL: the file URL parser never panics on a malformed or hostile
// URL, never repeats a password in its errors, and what it accepts names a
// directory without a NUL byte and a usable config. It only parses:
// nothing is created on disk (stores.Open's fuzzing leaves file URLs out
// because NewFile creates the directory).
func FuzzFileURL(f *testing.F) {
	for _, seed := range []string{
		"file:///var/cache/app?prefix=a:&max_entries=500&default_ttl=5m", "file:relative/dir", "file://./rel",
		"file://localhost/abs", "file://server/share", "file://", "file:///tmp/a%00b", "file://u:hunter2@/tmp",
		"file:///tmp?max_entries=-1", "file:///tmp?max_entries=99999999999999999999", "file:///tmp?max_entries=0",
		"file:///tmp?default_ttl=-1s", "file:///tmp?prefix=a&prefix=b", "file:///tmp?x=%", "file:%zz", "file:///",
		"FILE:///tmp", "file://..", "file:///tmp?local=1MiB",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		cfg, err := parseFileURL(u)
		if err != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Count(raw, pw) == 1 && strings.Contains(err.Error(), pw) {
				t.Fatalf("parseFileURL(%q) error %q repeats the password", raw, err)
			}
			return
		}
		switch {
		case u.User != nil:
			t.Fatalf("parseFileURL(%q) accepted a user", raw)
		case cfg.Dir == "":
			t.Fatalf("parseFileURL(%q) accepted an empty directory", raw)
		case strings.ContainsRune(cfg.Dir, 0):
			t.Fatalf("parseFileURL(%q) accepted a directory with a NUL byte", raw)
		case cfg.MaxEntries < -1 || cfg.DefaultTTL < 0:
			t.Fatalf("parseFileURL(%q) = %+v: a negative limit", raw, cfg)
		}
	})
}
