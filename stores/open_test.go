package stores

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		url  string
		want []string // substrings the error must contain
	}{
		{"nok, empty", "", []string{"empty store URL"}},
		{"nok, blank", "   ", []string{"empty store URL"}},
		{"nok, malformed", "memory://%zz", []string{"malformed store URL"}},
		{"nok, control character", "memory://\x7f", []string{"malformed store URL"}},
		{"nok, no scheme", "just-a-path", []string{"no scheme", "memory", "null", "file"}},
		{"nok, unknown scheme", "mongodb://localhost", []string{`unknown store scheme "mongodb"`, "memory"}},
		{"nok, unknown parameter", "memory://?maxbytes=1MiB", []string{`unknown parameter "maxbytes"`, "max_bytes"}},
		{"nok, repeated parameter", "memory://?prefix=a&prefix=b", []string{"prefix", "given 2 times"}},
		{"nok, malformed query", "memory://?max_bytes=%zz", []string{"malformed query"}},
		{"nok, bad size", "memory://?max_bytes=lots", []string{"max_bytes", `"lots"`}},
		{"nok, zero size", "memory://?max_bytes=0", []string{"max_bytes", `"0"`}},
		{"nok, size below one entry", "memory://?max_bytes=10", []string{"MaxBytes 10"}},
		{"nok, negative entries", "memory://?max_entries=-1", []string{"max_entries", `"-1"`}},
		{"nok, bad entries", "memory://?max_entries=many", []string{"max_entries", `"many"`}},
		{"nok, bad ttl", "memory://?default_ttl=soon", []string{"default_ttl", `"soon"`}},
		{"nok, negative ttl", "memory://?default_ttl=-5s", []string{"default_ttl", `"-5s"`}},
		{"nok, memory with a host", "memory://somehost", []string{"memory URL takes no host"}},
		{"nok, memory with a path", "memory:///some/path", []string{"memory URL takes no host"}},
		{"nok, null with a host", "null://host", []string{"null URL takes no host"}},
		{"nok, null unknown parameter", "null://?max_bytes=1", []string{`unknown parameter "max_bytes"`}},
		{"nok, file without directory", "file://", []string{"file URL has no directory"}},
		{"nok, file with host", "file://server/share", []string{`names host "server"`}},
		{"nok, file unknown parameter", "file://" + dir + "?threshold=5", []string{`unknown parameter "threshold"`, "max_entries"}},
		{"nok, file bad max_entries", "file://" + dir + "?max_entries=-3", []string{"max_entries", `"-3"`}},
		{"nok, file repeated max_entries", "file://" + dir + "?max_entries=1&max_entries=2", []string{"max_entries", "given 2 times"}},
		{"nok, file with user", "file://user@/" + dir, []string{"file URL takes no user"}},
		{"nok, file NUL byte", "file:///tmp/a%00b", []string{"NUL"}},
		{"nok, saslmemcached user without password", "saslmemcached://app@127.0.0.1:11211", []string{`user "app" has no password`, "saslmemcached://user:password@"}},
		{"nok, saslmemcached empty password", "saslmemcached://app:@127.0.0.1:11211", []string{`user "app" has no password`}},
		{"nok, memcached -Y user without password", "memcached://app@127.0.0.1:11211", []string{`user "app" has no password`, "memcached://user:password@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.url)
			require.Error(t, err, "Open(%q) = %v", tt.url, s)
			assert.Nil(t, s)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w, "Open(%q)", tt.url)
			}
		})
	}
}

func TestOpenNeverEchoesPasswords(t *testing.T) {
	const secret = "hunter2-secret"
	urls := []string{
		"mongodb://user:" + secret + "@localhost:27017",
		"memory://user:" + secret + "@",
		"null://user:" + secret + "@",
		"file://user:" + secret + "@/tmp/x",
		"memory://user:" + secret + "@host:bad:port",
		"memory://user:" + secret + "@%zz",
		"user:" + secret + "@host",
		"memory://user:" + secret + "@?max_bytes=lots",
	}
	for _, u := range urls {
		_, err := Open(context.Background(), u)
		require.Error(t, err, "Open(%q)", u)
		assert.NotContains(t, err.Error(), secret, "Open(%q) echoed the password", u)
	}
}

func TestOpenNull(t *testing.T) {
	for _, u := range []string{"null://", "null:", "NULL://", "null://?prefix=app:&default_ttl=5m"} {
		s, err := Open(context.Background(), u)
		require.NoError(t, err, "Open(%q)", u)
		assert.IsType(t, &Null{}, s, "Open(%q)", u)
	}
}

func TestOpenMemory(t *testing.T) {
	tests := []struct {
		url      string
		maxBytes int64
		def      time.Duration
	}{
		{"memory://", DefaultMemoryMaxBytes, 0},
		{"memory:", DefaultMemoryMaxBytes, 0},
		{"memory://?max_bytes=64MiB&max_entries=10000&default_ttl=5m&prefix=", 64 << 20, 5 * time.Minute},
		{"memory://?max_bytes=500KB&default_ttl=30", 500_000, 30 * time.Second},
		{"memory://?max_bytes=1048576&prefix=app%3A", 1 << 20, 0},
		{"memory://?max_bytes=2M", 2_000_000, 0},    // as Echo's BodyLimit("2M")
		{"memory://?max_bytes=2Mi", 2 << 20, 0},     // binary units
		{"memory://?max_bytes=1.5k", 1500, 0},       // gommon's fractions
		{"memory://?max_bytes=1%20GiB", 1 << 30, 0}, // a space before the unit
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := Open(context.Background(), tt.url)
			require.NoError(t, err)
			defer s.Close()
			m, ok := s.(*Memory)
			require.True(t, ok, "Open(%q) = %T", tt.url, s)
			assert.Equal(t, tt.maxBytes, m.maxBytes)
			assert.Equal(t, uint64(tt.maxBytes), m.cache.GetMaximum())
			assert.Equal(t, tt.def, m.def)
		})
	}
}

// TestParseSize: sizes read as Echo's BodyLimit reads them, and nothing
// that could wrap around.
func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"ok, plain", "1048576", 1 << 20, true},
		{"ok, decimal M", "2M", 2_000_000, true},
		{"ok, decimal MB", "2mb", 2_000_000, true},
		{"ok, binary MiB", "2MiB", 2 << 20, true},
		{"ok, exabyte", "7E", 7e18, true},
		{"nok, negative", "-5", 0, false},
		{"nok, negative with unit", "-5MiB", 0, false},
		{"nok, past int64", "9999EB", 0, false},
		{"nok, words", "lots", 0, false},
		{"nok, empty", "", 0, false},
	} {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: parseSize(%q) = %d, %v; want %d (ok %v)", tt.name, tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestOpenMemoryMaxEntries(t *testing.T) {
	s, err := Open(context.Background(), "memory://?max_entries=10")
	require.NoError(t, err)
	defer s.Close()
	m := s.(*Memory)
	for i := range 100 {
		require.NoError(t, m.Set(context.Background(), string(rune('a'+i)), nil, NoExpiry))
	}
	n, _ := residents(t, m)
	assert.LessOrEqual(t, n, 10)
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		url    string
		dir    string
		max    int
		def    time.Duration
		prefix string
	}{
		{"ok, absolute", "file://" + dir, dir, DefaultFileMaxEntries, 0, ""},
		{"ok, localhost", "file://localhost" + dir + "/b", dir + "/b", DefaultFileMaxEntries, 0, ""},
		{"ok, single slash", "file:" + dir + "/c", dir + "/c", DefaultFileMaxEntries, 0, ""},
		{"ok, parameters", "file://" + dir + "?max_entries=20&default_ttl=1h&prefix=app:", dir, 20, time.Hour, "app:"},
		{"ok, max_entries=0 turns pruning off", "file://" + dir + "?max_entries=0", dir, 0, 0, ""},
		{"ok, escaped space", "file://" + dir + "/with%20space", dir + "/with space", DefaultFileMaxEntries, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.url)
			require.NoError(t, err)
			defer s.Close()
			f, ok := s.(*File)
			require.True(t, ok, "Open(%q) = %T", tt.url, s)
			want, err := NewFile(FileConfig{Dir: filepath.FromSlash(tt.dir), Prefix: tt.prefix})
			require.NoError(t, err)
			assert.Equal(t, want.ns, f.ns, "namespace directory")
			assert.Equal(t, tt.max, f.max)
			assert.Equal(t, tt.def, f.def)
		})
	}
}

func TestOpenFileRelative(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	for _, u := range []string{"file:rel/a", "file:./rel/b", "file://./rel/c", "file:rel/d?max_entries=5"} {
		s, err := Open(context.Background(), u)
		require.NoError(t, err, "Open(%q)", u)
		require.NoError(t, s.Set(context.Background(), "k", []byte("v"), NoExpiry))
		require.NoError(t, s.Close())
	}
	for _, d := range []string{"a", "b", "c", "d"} {
		info, err := os.Stat(filepath.Join(wd, "rel", d))
		require.NoError(t, err, "relative directory rel/%s", d)
		assert.True(t, info.IsDir())
	}
}

// A refused parameter's message says what is wrong with it: a sign, a
// missing unit, an overflow.
func TestOpenParamMessages(t *testing.T) {
	tests := []struct{ url, want string }{
		{"memory://?default_ttl=1.5", "with a unit"},
		{"memory://?default_ttl=-5s", "not negative"},
		{"memory://?default_ttl=99999999999999h", "at most 2562047h"},
		{"memory://?default_ttl=99999999999999999999", "at most 2562047h"},
		{"memory://?default_ttl=5x", "such as 500ms"},
		{"memory://?max_entries=+5", "digits only"},
		{"memory://?max_entries=%205", "digits only"},
		{"memory://?max_entries=-5", "digits only"},
		{"memory://?max_entries=99999999999999999999", "at most"},
		{"memory://?max_bytes=-1", "not negative"},
		{"memory://?max_bytes=lots", "a size such as"},
	}
	for _, tt := range tests {
		_, err := Open(context.Background(), tt.url)
		if assert.Error(t, err, tt.url) {
			assert.Contains(t, err.Error(), tt.want, tt.url)
		}
	}
}
