// Command production is echocache set up the way an app runs in
// production: the store named by $CACHE_URL opened and checked at start-up
// (stores.OpenAndPing), the cache installed with e.Use behind Recover,
// RequestID, CORS and Gzip, a cached GET / and a POST / under the same
// middleware, stale-while-revalidate, stale-if-error and the cross-process
// lock, Prometheus metrics on /metrics, and every log line, echocache's
// included, as JSON through log/slog. It listens on $ADDR and stops
// gracefully on SIGINT or SIGTERM.
//
//	CACHE_URL='redis://127.0.0.1:6379/0?prefix=myapp:' go run ./examples/production
//	curl -i http://127.0.0.1:5000/
//	curl http://127.0.0.1:5000/metrics | grep echocache_
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/echocache/echocache/stores"
)

func main() {
	// One JSON log for the app, echocache (which logs to slog.Default()
	// unless its Config names a logger) and the store's start-up check.
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env("ADDR", "127.0.0.1:5000"), env("CACHE_URL", "memory://")); err != nil {
		slog.Error("production: " + err.Error())
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run serves the app on addr with the store at cacheURL until ctx ends.
func run(ctx context.Context, addr, cacheURL string) error {
	// A wrong URL, a wrong password or a server that is down stops the
	// app here, in one line that hides the password.
	store, err := stores.OpenAndPing(ctx, cacheURL)
	if err != nil {
		return err
	}
	defer store.Close()

	e, err := newServer(store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("production: listening on http://" + ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
