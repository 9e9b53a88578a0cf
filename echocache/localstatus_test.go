package echocache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

var ttlDigits = regexp.MustCompile(`ttl=[0-9]+`)

// mwPrefix returns a fresh namespace for one test.
func mwPrefix(t *testing.T) string {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	return "mwtest-" + hex.EncodeToString(raw[:]) + ":"
}

// A page read from a local tier's copy is a hit like any other, whose
// Cache-Status says it was local (RFC 9211, 2.8: detail); a page read
// from the shared store, or from the memory store, says nothing more.
func TestCacheStatusLocalHit(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, url string) *echo.Echo {
		t.Helper()
		s, err := stores.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Clear(ctx); _ = s.Close() })
		if err := stores.Ping(ctx, s); err != nil {
			t.Fatal(err)
		}
		c := newMWCache(t, s)
		e := echo.New()
		// The page's write follows its response: the next request reads
		// the store only once it has ended.
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(ec echo.Context) error {
				err := next(ec)
				_ = pagecache.FlushWrites(ec.Request().Context(), c.core())
				return err
			}
		})
		e.GET("/page", c.Cached(time.Hour)(func(c echo.Context) error { return c.String(http.StatusOK, "page") }))
		return e
	}
	get := func(e *echo.Echo) string {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/page", nil))
		if w.Code != http.StatusOK || w.Body.String() != "page" {
			t.Fatalf("GET /page = %d %q; want 200 \"page\"", w.Code, w.Body.String())
		}
		// The ttl depends on the second the request falls in.
		return ttlDigits.ReplaceAllString(w.Header().Get("Cache-Status"), "ttl=N")
	}
	const (
		stored = "echocache; fwd=uri-miss; ttl=N; stored"
		shared = "echocache; hit; ttl=N"
		local  = "echocache; hit; ttl=N; detail=local"
	)

	t.Run("memcached+local", func(t *testing.T) {
		// memcached announces nothing: the read after the write asks the
		// shared store and keeps the copy the next one is served.
		e := open(t, "memcached://"+servertest.Memcached(t)+"?local=1MiB&local_max_age=1h&prefix="+mwPrefix(t))
		for i, want := range []string{stored, shared, local, local} {
			if got := get(e); got != want {
				t.Errorf("request %d: Cache-Status = %q; want %q", i+1, got, want)
			}
		}
	})
	t.Run("redis+local", func(t *testing.T) {
		// The writer's own announcement drops the copy a read may have
		// kept before it arrived: within a second, a copy stays.
		e := open(t, servertest.Redis(t)+"?local=1MiB&prefix="+mwPrefix(t))
		if got := get(e); got != stored {
			t.Fatalf("request 1: Cache-Status = %q; want %q", got, stored)
		}
		deadline := time.Now().Add(5 * time.Second)
		for got := get(e); got != local; got = get(e) {
			if got != shared {
				t.Fatalf("Cache-Status = %q; want %q or %q", got, shared, local)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no local hit after 5s: Cache-Status = %q", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("memory", func(t *testing.T) {
		e := open(t, "memory://?prefix="+mwPrefix(t))
		for i, want := range []string{stored, shared, shared} {
			if got := get(e); got != want {
				t.Errorf("request %d: Cache-Status = %q; want %q", i+1, got, want)
			}
		}
	})
}
