package routetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// What the route's response writer passes through to the client's:
// Flush, Hijack; and hits served concurrently from an in-process store.

// plainWriter supports neither Flush nor Hijack.
type plainWriter struct{ h http.Header }

func (w *plainWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *plainWriter) WriteHeader(int)             {}
func (w *plainWriter) Write(b []byte) (int, error) { return len(b), nil }

// hijackWriter can be hijacked.
type hijackWriter struct {
	plainWriter
	hijacked bool
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return nil, nil, nil
}

func memoryCache(t *testing.T) *echocache.Cache {
	t.Helper()
	return echocache.New(openStore(t, "memory"))
}

// writerFlush: Flush reaches the client's writer, and a flushed response
// is stored whole; a writer that cannot flush makes Flush panic, as
// net/http's and Echo's writers do.
func writerFlush(t *testing.T, fe Frontend) {
	t.Run("ok, a flushed response is stored whole", func(t *testing.T) {
		c := memoryCache(t)
		app := fe.NewApp(t, c)
		app.Route("/w", Config{TTL: minute}, func(x Ctx) error {
			x.Response().WriteHeader(http.StatusOK)
			_, _ = x.Response().Write([]byte("part 1, "))
			x.Response().(http.Flusher).Flush()
			_, _ = x.Response().Write([]byte("part 2"))
			return nil
		})
		rec := Do(app, "", "/w")
		if !rec.Flushed {
			t.Error("Flush did not reach the client's writer")
		}
		if rec.Body.String() != "part 1, part 2" {
			t.Errorf("body %q; want part 1, part 2", rec.Body.String())
		}
		settle(t, c)
		hit := Do(app, "", "/w")
		if hit.Header().Get("X-Cache") != "HIT" || hit.Body.String() != "part 1, part 2" {
			t.Errorf("then: X-Cache %q, body %q; want HIT and the whole page", hit.Header().Get("X-Cache"), hit.Body.String())
		}
		if got := c.Stats().Stores; got != 1 {
			t.Errorf("Stats().Stores = %d; want 1", got)
		}
	})
	t.Run("nok, a writer that cannot flush", func(t *testing.T) {
		c := memoryCache(t)
		app := fe.NewApp(t, c)
		app.Route("/w", Config{TTL: minute}, func(x Ctx) error {
			x.Response().(http.Flusher).Flush()
			return nil
		})
		panicked := func() (v any) {
			defer func() { v = recover() }()
			app.ServeHTTP(&plainWriter{}, httptest.NewRequest(http.MethodGet, "/w", nil))
			return nil
		}()
		if panicked == nil {
			t.Error("Flush on a writer that cannot flush did not panic")
		}
	})
}

// writerHijack: Hijack reaches the client's writer, and a hijacked
// connection is not stored; a writer that cannot be hijacked says so
// (http.ErrNotSupported).
func writerHijack(t *testing.T, fe Frontend) {
	c := memoryCache(t)
	app := fe.NewApp(t, c)
	var hijackErr atomic.Pointer[error]
	app.Route("/w", Config{TTL: minute}, func(x Ctx) error {
		_, _, err := http.NewResponseController(x.Response()).Hijack()
		hijackErr.Store(&err)
		if err != nil {
			return err
		}
		x.Response().Header().Set("X", "1")
		x.Response().WriteHeader(http.StatusOK)
		return nil
	})
	w := &hijackWriter{}
	app.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/w", nil))
	if !w.hijacked {
		t.Error("Hijack did not reach the client's writer")
	}
	bypassed(t, c, echocache.BypassHijacked, 1)

	app.ServeHTTP(&plainWriter{}, httptest.NewRequest(http.MethodGet, "/w", nil))
	if err := hijackErr.Load(); err == nil || !errors.Is(*err, http.ErrNotSupported) {
		t.Errorf("Hijack on a writer that cannot be hijacked: %v; want http.ErrNotSupported", err)
	}
}

// memoConcurrent serves hits from many goroutines, on an in-process store
// whose decoded entries are shared through memos, while the page is
// deleted and stored again with new contents: every response must be one
// whole version (its body and its header agree), under the race
// detector.
func memoConcurrent(t *testing.T, fe Frontend) {
	store, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	c := echocache.New(store)
	app := fe.NewApp(t, c)
	var version atomic.Int64
	app.Route("/c", Config{TTL: time.Hour}, func(x Ctx) error {
		v := strconv.FormatInt(version.Load(), 10)
		x.Response().Header().Set("X-Version", v)
		return writeText(x, http.StatusOK, "version "+v)
	})
	const readers, rounds = 4, 200
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for range readers {
		wg.Go(func() {
			for range rounds {
				rec := Do(app, "", "/c")
				h := rec.Result().Header
				if rec.Code != http.StatusOK || rec.Body.String() != "version "+h.Get("X-Version") {
					errs <- fmt.Sprintf("status %d, body %q with X-Version %q", rec.Code, rec.Body.String(), h.Get("X-Version"))
					return
				}
			}
		})
	}
	for range rounds / 10 {
		version.Add(1)
		if err := c.DeletePage(context.Background(), "/c"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error("a response mixed versions:", msg)
	}
	if c.Stats().Hits == 0 {
		t.Error("the readers never hit the cache")
	}
}
