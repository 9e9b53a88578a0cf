package pagecache

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// The response Cache-Control directives the engine reads (RFC 9111,
// section 5.2.2). Directive names are case-insensitive; values of the
// same header in several field lines are read as one list.

// cacheControlForbids reports no-store, private or no-cache.
func cacheControlForbids(values []string) bool {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "private", "no-cache":
				return true
			}
		}
	}
	return false
}

// cacheControlTTL returns the freshness lifetime Cache-Control gives a
// shared cache, s-maxage or else max-age (RFC 9111, 5.2.2.10 and
// 5.2.2.1), and whether either is present. A directive that is present
// with a value that is not delta-seconds (digits only: "-5", "abc", "1.5"
// and an empty value are not), or twice with different values, makes the
// response stale (0, true), as RFC 9111 4.2.1 encourages, so it is not
// stored; an s-maxage so made does not fall back to max-age. A value past
// what a Duration holds (290 years) is clamped (RFC 9111, 1.2.2), never
// wrapped.
func cacheControlTTL(values []string) (time.Duration, bool) {
	if d, ok := deltaSeconds(values, "s-maxage"); ok {
		return d, true
	}
	return deltaSeconds(values, "max-age")
}

// deltaSeconds returns the lifetime of the directive name in values, as
// cacheControlTTL reads it.
func deltaSeconds(values []string, name string) (time.Duration, bool) {
	var d time.Duration
	found := false
	for _, v := range values {
		for dir := range strings.SplitSeq(v, ",") {
			n, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			if !strings.EqualFold(strings.TrimSpace(n), name) {
				continue
			}
			got, ok := parseDeltaSeconds(val)
			if !ok || (found && got != d) {
				return 0, true // invalid or conflicting: stale
			}
			d, found = got, true
		}
	}
	return d, found
}

// maxDeltaSeconds is the largest lifetime in seconds a Duration holds.
const maxDeltaSeconds = math.MaxInt64 / int64(time.Second)

// parseDeltaSeconds parses delta-seconds (RFC 9111, 1.2.2), in the token
// or the quoted-string form.
func parseDeltaSeconds(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDeltaSeconds { // only digits: the error is a range error
		n = maxDeltaSeconds
	}
	return time.Duration(n) * time.Second, true
}
