// Package demotest helps the examples' tests drive an Echo server through
// HTTP without a network listener.
package demotest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/examples/proverbs"
	"github.com/echocache/echocache/stores"
)

// ExpiryBound is how long Eventually waits for an entry with a short TTL to
// expire before failing the test. Tests give their entries TTLs of a few
// tens of milliseconds, so the bound is only reached when expiry is broken.
const ExpiryBound = 10 * time.Second

// Memory returns a fresh memory store, closed when the test ends.
func Memory(tb testing.TB) stores.Store {
	tb.Helper()
	s, err := stores.Open(tb.Context(), "memory://")
	if err != nil {
		tb.Fatalf("stores.Open(memory://): %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Do sends a request to h and returns the recorded response.
func Do(tb testing.TB, h http.Handler, method, target string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Get sends GET target to h, checks that the answer is 200 OK and returns
// its body.
func Get(tb testing.TB, h http.Handler, target string) string {
	tb.Helper()
	rec := Do(tb, h, http.MethodGet, target)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s = %d %q; want 200", target, rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// Eventually polls cond until it reports true, and fails the test if that
// takes longer than ExpiryBound. The message says what was awaited.
func Eventually(tb testing.TB, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(ExpiryBound)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for "+format, append([]any{ExpiryBound}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Between returns the text of s between the first occurrence of start and
// the next occurrence of end, or fails the test.
func Between(tb testing.TB, s, start, end string) string {
	tb.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		tb.Fatalf("%q not found in:\n%s", start, s)
	}
	inner, _, ok := strings.Cut(after, end)
	if !ok {
		tb.Fatalf("%q not found after %q in:\n%s", end, start, s)
	}
	return inner
}

// ShortTTL is the TTL tests give entries whose expiry they watch.
const ShortTTL = 50 * time.Millisecond

// Shorten sets *ttl to ShortTTL for the rest of the test. Examples keep
// their walkthrough TTLs in package variables so that tests can do this.
func Shorten(tb testing.TB, ttl *time.Duration) {
	old := *ttl
	*ttl = ShortTTL
	tb.Cleanup(func() { *ttl = old })
}

// RotateProverbs makes proverbs.Random return the proverbs in turn for the
// rest of the test, so two calls never agree by chance.
func RotateProverbs(tb testing.TB) {
	tb.Cleanup(proverbs.Rotate())
}

// CachedView checks the walkthrough's cached view on h: GET / answers a
// time, stored by the first request (X-Cache MISS) and served again as a
// hit. examples/cached-app and examples/echo-v5 run it.
func CachedView(t *testing.T, h http.Handler) {
	t.Helper()
	first := Do(t, h, http.MethodGet, "/")
	if got := first.Header().Get("X-Cache"); got != "MISS" {
		t.Errorf("first GET / X-Cache = %q; want MISS", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, first.Body.String()); err != nil {
		t.Errorf("GET / = %q; want an RFC 3339 time: %v", first.Body.String(), err)
	}
	for range 3 {
		rec := Do(t, h, http.MethodGet, "/")
		if got, want := rec.Body.String(), first.Body.String(); got != want {
			t.Errorf("GET / = %q; want the cached %q", got, want)
		}
		if got := rec.Header().Get("X-Cache"); got != "HIT" {
			t.Errorf("repeated GET / X-Cache = %q; want HIT", got)
		}
	}
}

// CachedViewExpires checks that the page of the cached view changes once
// its TTL, *ttl, shortened for the test, has passed.
func CachedViewExpires(t *testing.T, newServer func(stores.Store) http.Handler, ttl *time.Duration) {
	t.Helper()
	Shorten(t, ttl)
	h := newServer(Memory(t))
	first := Get(t, h, "/")
	Eventually(t, func() bool { return Get(t, h, "/") != first },
		"GET / to stop returning %q after %v", first, *ttl)
}
