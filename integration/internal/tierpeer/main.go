// Command tierpeer is one process of the local tier's coherence test
// (integration/localtier_test.go): an Echo server on $ADDR with a Cache on
// $CACHE_URL, whose handlers read a value, a memoized result and a cached,
// tagged page, change them the ways an application does (overwrite,
// Delete, Forget, ForgetAll, DeletePage, InvalidateTag, Clear), and watch
// for a change made by another process.
//
//	GET  /read?what=value|memo|page   the current value; X-Local-Tier: local when
//	                                  the local tier answered every read it made
//	POST /op?do=set|delete|forget|forgetall|deletepage|tag|clear
//	                                  the change; answers the Unix time in ns when it returned
//	GET  /watch?what=...&old=...      streams "ready" once the local tier answered a
//	                                  read with old ("ready remote" if not within 5 s,
//	                                  "ready changed" if old changed), then, once a read
//	                                  no longer returns old, the Unix time in ns of that
//	                                  read and "local" or "remote": how the read before
//	                                  it was answered
//	GET  /stats                       the local tier's hits and misses
//	POST /flush                       waits for the cache's work in the background
//	                                  (the second delete of DeletePage, 2×StoreTimeout later)
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tierpeer:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := stores.Open(ctx, os.Getenv("CACHE_URL"))
	if err != nil {
		return err
	}
	defer store.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := stores.Ping(pctx, store); err != nil {
		return err
	}
	c := echocache.New(store)
	var n atomic.Int64
	fresh := func() string { return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(n.Add(1), 10) }
	memo := echocache.Memoize(c, "peer", time.Hour, func(_ context.Context, a string) (string, error) { return a + "-" + fresh(), nil })

	pages := echo.New()
	pages.GET("/page", func(ec echo.Context) error {
		echocache.Tag(ec, "t")
		return ec.String(http.StatusOK, "page-"+fresh())
	}, c.Cached(time.Hour))

	read := func(ctx context.Context, what string) (string, error) {
		switch what {
		case "value":
			v, err := echocache.Get[string](ctx, c, "k")
			if err != nil {
				return "", nil // a miss reads as ""
			}
			return v, nil
		case "memo":
			return memo.Get(ctx, "a")
		case "page":
			rec := httptest.NewRecorder()
			pages.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/page", nil))
			return rec.Body.String(), nil
		}
		return "", fmt.Errorf("unknown what=%q", what)
	}

	// readLocal reads what and reports whether the local tier answered
	// every store read it made (the test sends one request at a time).
	tier, _ := store.(*stores.LocalTier)
	readLocal := func(ctx context.Context, what string) (string, bool, error) {
		if tier == nil {
			v, err := read(ctx, what)
			return v, false, err
		}
		before := tier.LocalStats()
		v, err := read(ctx, what)
		after := tier.LocalStats()
		return v, after.Hits > before.Hits && after.Misses == before.Misses, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/read", func(ec echo.Context) error {
		v, local, err := readLocal(ec.Request().Context(), ec.QueryParam("what"))
		if err != nil {
			return err
		}
		if local {
			ec.Response().Header().Set("X-Local-Tier", "local")
		}
		return ec.String(http.StatusOK, v)
	})
	e.POST("/op", func(ec echo.Context) error {
		ctx := ec.Request().Context()
		var err error
		switch do := ec.QueryParam("do"); do {
		case "set":
			err = echocache.Set(ctx, c, "k", fresh(), time.Hour)
		case "delete":
			err = c.Delete(ctx, "k")
		case "forget":
			err = memo.Forget(ctx, "a")
		case "forgetall":
			err = memo.ForgetAll(ctx)
		case "deletepage":
			err = c.DeletePage(ctx, "/page")
		case "tag":
			err = c.InvalidateTag(ctx, "t")
		case "clear":
			err = c.Clear(ctx)
		default:
			err = fmt.Errorf("unknown do=%q", do)
		}
		if err != nil {
			return err
		}
		return ec.String(http.StatusOK, strconv.FormatInt(time.Now().UnixNano(), 10))
	})
	e.GET("/watch", func(ec echo.Context) error {
		ctx := ec.Request().Context()
		what, old := ec.QueryParam("what"), ec.QueryParam("old")
		w := ec.Response()
		w.WriteHeader(http.StatusOK)
		// Ready once a read of old is answered by the local tier (the
		// announcement of this process's own write of it, just before,
		// may drop a copy once more).
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, local, err := readLocal(ctx, what)
			if err != nil {
				return err
			}
			if v != old {
				fmt.Fprintln(w, "ready changed")
				return nil
			}
			if local {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(w, "ready remote")
				return nil
			}
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Fprintln(w, "ready")
		w.Flush()
		deadline = time.Now().Add(10 * time.Second)
		lastLocal := true
		for time.Now().Before(deadline) {
			v, local, err := readLocal(ctx, what)
			if err != nil {
				return err
			}
			if v != old {
				// How the read before it was answered: by the local
				// tier when the change was seen because its copy was
				// dropped.
				how := "remote"
				if lastLocal {
					how = "local"
				}
				fmt.Fprintln(w, time.Now().UnixNano(), how)
				return nil
			}
			lastLocal = local
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Fprintln(w, "timeout")
		return nil
	})
	e.POST("/flush", func(ec echo.Context) error {
		if err := c.Flush(ec.Request().Context()); err != nil {
			return err
		}
		return ec.String(http.StatusOK, "flushed")
	})
	e.GET("/stats", func(ec echo.Context) error {
		t, ok := store.(*stores.LocalTier)
		if !ok {
			return ec.String(http.StatusOK, "0 0")
		}
		s := t.LocalStats()
		return ec.String(http.StatusOK, fmt.Sprintf("%d %d", s.Hits, s.Misses))
	})

	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "tierpeer: listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: e}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
