package stores

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/gommon/bytes"
)

// OpenFunc opens a store from a parsed URL. It must reject parameters it
// does not know; [Params] helps with that.
type OpenFunc func(ctx context.Context, u *url.URL) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a store available to [Open] under a URL scheme, in the way
// Flask-Cache's CACHE_TYPE accepts an import string. It panics if scheme is
// empty, open is nil or the scheme is already registered, like
// database/sql.Register.
func Register(scheme string, open OpenFunc) {
	scheme = strings.ToLower(scheme)
	if scheme == "" || open == nil {
		panic("stores: Register needs a scheme and an OpenFunc")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("stores: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the store named by rawURL. The forms are documented in the
// README; for example:
//
//	null://
//	memory://?max_bytes=64MiB&max_entries=10000
//	file:///var/cache/myapp?max_entries=500
//	redis://user:pass@127.0.0.1:6379/0?prefix=myapp:
//	redis+cluster://10.0.0.1:7000,10.0.0.2:7000/?prefix=myapp:
//	redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster?prefix=myapp:
//	memcached://127.0.0.1:11211,127.0.0.1:11212?prefix=myapp:
//
// Every scheme but memory and null also takes local=SIZE (and
// local_max_age=DURATION), which puts a [LocalTier] of that size in front
// of the store: redis://127.0.0.1:6379/0?prefix=myapp:&local=32MiB.
//
// A malformed URL, an unknown scheme, an unknown parameter or a bad value is
// an error that names it; nothing is silently defaulted. Open does not
// contact servers; use [Ping] to check one at start-up.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, errors.New("stores: empty store URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the URL, which may hold a password
		}
		return nil, fmt.Errorf("stores: malformed store URL: %v", err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("stores: store URL %q has no scheme (want one of %s)", u.Redacted(), strings.Join(Schemes(), ", "))
	}
	registryMu.RLock()
	open := registry[strings.ToLower(u.Scheme)]
	registryMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("stores: unknown store scheme %q (want one of %s)", u.Scheme, strings.Join(Schemes(), ", "))
	}
	return openLocal(ctx, u, open)
}

// Params reads the query parameters of a store URL and remembers the first
// problem: a bad value, a repeated parameter, or (from [Params.Err]) a
// parameter that nobody read. The zero value is not usable; call NewParams.
type Params struct {
	scheme string
	q      url.Values
	used   map[string]bool
	err    error
}

// NewParams returns a Params for u. Error messages name the URL's scheme.
func NewParams(u *url.URL) *Params {
	q, err := url.ParseQuery(u.RawQuery)
	p := &Params{scheme: u.Scheme, q: q, used: map[string]bool{}}
	if err != nil {
		p.err = fmt.Errorf("stores: %s URL: malformed query: %v", u.Scheme, err)
	}
	return p
}

func (p *Params) fail(name, value, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("stores: %s URL: parameter %s=%q: want %s", p.scheme, name, value, want)
	}
}

// lookup returns the raw value of name and whether it was given.
func (p *Params) lookup(name string) (string, bool) {
	p.used[name] = true
	vs, ok := p.q[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 && p.err == nil {
		p.err = fmt.Errorf("stores: %s URL: parameter %s given %d times", p.scheme, name, len(vs))
	}
	return vs[0], true
}

// String returns the value of name, or def when it is absent.
func (p *Params) String(name, def string) string {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	return v
}

// Duration returns the value of name parsed by time.ParseDuration (a bare
// integer counts seconds), or def when absent. Negative values are refused.
func (p *Params) Duration(name string, def time.Duration) time.Duration {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	if digitsOnly(v) {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n <= maxSeconds {
			return time.Duration(n) * time.Second
		}
		p.fail(name, v, "a duration of at most 2562047h (292 years)")
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case strings.HasPrefix(v, "-"):
		p.fail(name, v, "a duration that is not negative, such as 30s or 5m")
	case err != nil && strings.Contains(err.Error(), "missing unit"):
		p.fail(name, v, "a duration with a unit, such as 500ms or 30s (a bare integer counts seconds)")
	case err != nil && v != "" && strings.IndexFunc(v[:1], func(r rune) bool { return r >= '0' && r <= '9' }) == 0 &&
		!strings.Contains(err.Error(), "unknown unit"):
		// Digits first and a known unit: time.ParseDuration's "invalid
		// duration" is then an overflow.
		p.fail(name, v, "a duration of at most 2562047h (292 years)")
	case err != nil:
		p.fail(name, v, "a duration such as 500ms, 30s or 5m")
	default:
		return d
	}
	return def
}

// digitsOnly reports whether s is one or more ASCII digits: no sign, no
// space.
func digitsOnly(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Int returns the value of name as a non-negative integer, or def when absent.
func (p *Params) Int(name string, def int) int {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	switch {
	case !digitsOnly(v):
		p.fail(name, v, "a non-negative integer, digits only")
	case err != nil:
		p.fail(name, v, "an integer of at most "+strconv.Itoa(math.MaxInt))
	default:
		return n
	}
	return def
}

// Bool returns the value of name as a boolean (true/false/1/0), or def.
func (p *Params) Bool(name string, def bool) bool {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "true or false")
		return def
	}
	return b
}

// Bytes returns the value of name as a byte count, or def when absent. It
// reads sizes as Echo's BodyLimit does (github.com/labstack/gommon/bytes):
// a plain number, or one with the suffixes K, M, G, T, P, E (powers of
// 1000, also KB, MB...) or Ki, Mi, Gi... (powers of 1024, also KiB,
// MiB...), case-insensitive: "64MiB" is 67,108,864 bytes and "2M" is
// 2,000,000.
func (p *Params) Bytes(name string, def int64) int64 {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	n, err := parseSize(v)
	if err != nil {
		if strings.HasPrefix(strings.TrimSpace(v), "-") {
			p.fail(name, v, "a size that is not negative, such as 64MiB or 1048576")
		} else {
			p.fail(name, v, "a size such as 64MiB or 1048576")
		}
		return def
	}
	return n
}

// Err returns the first problem seen, or an error naming a parameter that no
// call read (an unknown parameter). Call it after reading every parameter.
func (p *Params) Err() error {
	if p.err != nil {
		return p.err
	}
	var unknown []string
	for name := range p.q {
		if !p.used[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := make([]string, 0, len(p.used))
		for name := range p.used {
			known = append(known, name)
		}
		slices.Sort(known)
		return fmt.Errorf("stores: %s URL: unknown parameter %q (known: %s)", p.scheme, unknown[0], strings.Join(known, ", "))
	}
	return nil
}

// parseSize reads a byte size the way Echo's BodyLimit does, with
// github.com/labstack/gommon/bytes: a plain number of bytes, or a number
// with the decimal units K, M, G, T, P, E (powers of 1000, also written
// KB, MB...) or the binary units Ki, Mi, Gi... (powers of 1024, also
// written KiB, MiB...), case-insensitive; "2M" is 2,000,000 bytes, as in
// BodyLimit("2M"), and "2MiB" is 2,097,152. A negative size, or one past
// what an int64 holds, is refused.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := bytes.Parse(t)
	if err != nil || strings.HasPrefix(t, "-") || n < 0 || n == math.MaxInt64 {
		return 0, fmt.Errorf("stores: bad size %q", s)
	}
	return n, nil
}
