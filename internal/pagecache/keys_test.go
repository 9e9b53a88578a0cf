package pagecache

import (
	"math"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendCanonicalQuery(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1", "a=2&a=1"},
		{"q=x+y&p=%2F", "p=%2F&q=x+y"},
		{"a&&b=", "a=&b="},
		{"utm_source=x&keep=1&gclid=3", "keep=1"},
		{"a=%zz", "%!a=%!%zz"},
		{"a;b=1", "a%3Bb=1"},
	}
	for _, tt := range tests {
		got := string(appendCanonicalQuery(nil, tt.raw, defaultIgnore))
		assert.Equal(t, tt.want, got, "appendCanonicalQuery(%q)", tt.raw)
	}
}

// Queries that mean different things never share a canonical form: a pair
// that decodes to a name starting with "%!" must not pass for a pair that
// did not decode.
func TestAppendCanonicalQueryNoCollision(t *testing.T) {
	pairs := [][2]string{
		{"%25%21a=1%26b%3D2", "%25%21a=1&b=2"},
		{"%zz=1", "%25%21%25zz=%25%211"},
		{"a=%zz&b=1", "a=%25%21%25zz%26b%3D1"},
	}
	for _, p := range pairs {
		a := string(appendCanonicalQuery(nil, p[0], defaultIgnore))
		b := string(appendCanonicalQuery(nil, p[1], defaultIgnore))
		assert.NotEqual(t, a, b, "appendCanonicalQuery(%q) and (%q) collide", p[0], p[1])
	}
}

// The fast path for queries already in canonical form must agree with the
// general one on every input it accepts.
func FuzzAlreadyCanonical(f *testing.F) {
	for _, seed := range []string{
		"a=1&b=2", "b=2&a=1", "a=1&a=0", "a=1&", "a=1&&b=2", "a", "a=", "=1",
		"utm_source=x&z=1", "a=x+y", "a=%41", "a=1;b=2", "a.b=~-_", "A=1&a=1",
		"a=1=2", "id=42&page=3&sort=asc",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !alreadyCanonical(raw, defaultIgnore) {
			return
		}
		if got := string(appendDecodedQuery(nil, raw, defaultIgnore)); got != raw {
			t.Errorf("alreadyCanonical(%q) but its canonical form is %q", raw, got)
		}
	})
}

// ignoreList's shortcuts for plain names and "prefix*" globs agree with
// path.Match.
func TestIgnoredAgreesWithPathMatch(t *testing.T) {
	globs := []string{"utm_*", "fbclid", "a?c", "x[yz]", "*", "p*q", `e\*`}
	names := []string{"", "utm_", "utm_source", "utm", "UTM_source", "utm_a/b", "fbclid", "fbclid2",
		"abc", "axc", "xy", "xz", "xx", "pq", "p1q", "e*", "e", "a/b"}
	for _, g := range globs {
		for _, n := range names {
			want, _ := path.Match(g, n)
			if got := compileIgnore([]string{g}).match(n); got != want {
				t.Errorf("compileIgnore([%q]).match(%q) = %v; path.Match says %v", g, n, got, want)
			}
		}
	}
}
func TestCacheControlTTLClampsHugeValues(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"max-age=60", time.Minute},
		{"s-maxage=10, max-age=60", 10 * time.Second},
		{"max-age=10000000000", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second},
		{"max-age=18446744074", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second},
		{"max-age=99999999999999999999999", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second},
	}
	for _, tt := range tests {
		got, ok := cacheControlTTL([]string{tt.in})
		require.True(t, ok, tt.in)
		assert.Equal(t, tt.want, got, "cacheControlTTL(%q)", tt.in)
		assert.Positive(t, got, "cacheControlTTL(%q) must never wrap", tt.in)
	}
}

// Freshness that is invalid or conflicting makes a response stale, never
// one the route's TTL keeps (RFC 9111, 4.2.1); a valid one is read in any
// case and either form.
func TestCacheControlTTLInvalid(t *testing.T) {
	tests := []struct {
		in      []string
		want    time.Duration
		present bool
	}{
		{[]string{"public"}, 0, false},
		{[]string{"max-age=60"}, time.Minute, true},
		{[]string{`max-age="60"`}, time.Minute, true},
		{[]string{"MAX-AGE=60"}, time.Minute, true},
		{[]string{"max-age=60, max-age=60"}, time.Minute, true},
		{[]string{"public", "max-age=60"}, time.Minute, true},
		{[]string{"s-maxage=abc, max-age=60"}, 0, true},
		{[]string{"max-age=-5"}, 0, true},
		{[]string{"max-age=abc"}, 0, true},
		{[]string{"max-age=1.5"}, 0, true},
		{[]string{"max-age=+5"}, 0, true},
		{[]string{"max-age="}, 0, true},
		{[]string{"max-age"}, 0, true},
		{[]string{`max-age=""`}, 0, true},
		{[]string{"max-age=0x10"}, 0, true},
		{[]string{"max-age=60, max-age=3600"}, 0, true},
		{[]string{"max-age=60", "max-age=3600"}, 0, true},
		{[]string{"s-maxage=5, s-maxage=6, max-age=60"}, 0, true},
	}
	for _, tt := range tests {
		got, ok := cacheControlTTL(tt.in)
		assert.Equal(t, tt.present, ok, "cacheControlTTL(%q) present", tt.in)
		assert.Equal(t, tt.want, got, "cacheControlTTL(%q)", tt.in)
	}
}
