// Package demotest helps the examples' tests drive an Echo server through
// HTTP without a network listener.
package demotest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
)

// ExpiryBound is how long Expires waits for an entry with a short TTL to
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

// Expires polls GET target on h until its body is no longer old, and
// returns the new body. It fails the test if that takes longer than
// ExpiryBound.
func Expires(tb testing.TB, h http.Handler, target, old string) string {
	tb.Helper()
	deadline := time.Now().Add(ExpiryBound)
	for {
		if body := Get(tb, h, target); body != old {
			return body
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET %s still returns the cached body after %v:\n%s", target, ExpiryBound, old)
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
