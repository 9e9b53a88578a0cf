// Package demo holds what every example shares and none of them is about:
// reading $ADDR and $CACHE_URL, opening the store, serving until
// interrupted. (The Go proverbs that stand in for the walkthrough's Zen of
// Python are in package proverbs, which the code the README shows can
// import.)
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/stores"
)

// Defaults of the environment variables every example reads.
const (
	// DefaultAddr is where an example listens when $ADDR is empty.
	DefaultAddr = "127.0.0.1:5000"
	// DefaultCacheURL is the store an example opens when $CACHE_URL is empty.
	DefaultCacheURL = "memory://"
)

func init() {
	// go-redis logs every failed dial itself, several lines per request
	// while redis is down. The examples report a store that does not answer
	// at start-up in one line; later store errors are counted by echocache
	// and logged, rate-limited, through the cache's logger (the route
	// middleware and WithCache give it Echo's).
	redis.SetLogger(discardLogger{})
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// Addr returns $ADDR, or DefaultAddr.
func Addr() string {
	if a := os.Getenv("ADDR"); a != "" {
		return a
	}
	return DefaultAddr
}

// CacheURL returns $CACHE_URL, or DefaultCacheURL.
func CacheURL() string {
	if u := os.Getenv("CACHE_URL"); u != "" {
		return u
	}
	return DefaultCacheURL
}

// Redact returns rawURL with its password hidden, for messages. A URL that
// does not parse is not repeated at all.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(malformed URL)"
	}
	if _, has := u.User.Password(); has {
		return u.Redacted()
	}
	return rawURL // as given: String would turn memory:// into memory:
}

// OpenStore opens the store named by rawURL with stores.OpenAndPing, which
// checks that its server answers and accepts the credentials, so a wrong
// URL is found at start-up rather than by a silent stream of uncached
// requests. The error is one line and names the URL (password hidden).
func OpenStore(ctx context.Context, rawURL string) (stores.Store, error) {
	store, err := stores.OpenAndPing(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("CACHE_URL %s: %w", Redact(rawURL), err)
	}
	return store, nil
}

// Main is what an example's main function does: it opens the store named
// by $CACHE_URL, builds the server with newServer and serves it on $ADDR
// until SIGINT or SIGTERM. When the store cannot be opened or the address
// cannot be listened on, it prints one line to stderr and exits with
// status 1.
func Main(newServer func(stores.Store) *echo.Echo) {
	MainHandler(func(s stores.Store) http.Handler { return newServer(s) })
}

// MainHandler is Main for a server of any framework (Echo v5, net/http).
func MainHandler(newServer func(stores.Store) http.Handler) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := OpenStore(ctx, CacheURL())
	if err != nil {
		Fatal(err)
	}
	defer store.Close()
	if err := listenAndServe(ctx, newServer(store), Redact(CacheURL())); err != nil {
		store.Close()
		Fatal(err)
	}
}

// Run serves e on $ADDR until SIGINT or SIGTERM, for an example without a
// cache. When the address cannot be listened on, it prints one line to
// stderr and exits with status 1.
func Run(e *echo.Echo) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := listenAndServe(ctx, e, ""); err != nil {
		Fatal(err)
	}
}

func listenAndServe(ctx context.Context, h http.Handler, storeURL string) error {
	ln, err := net.Listen("tcp", Addr())
	if err != nil {
		return fmt.Errorf("ADDR: %w", err)
	}
	msg := fmt.Sprintf("%s: listening on http://%s", Name(), ln.Addr())
	if storeURL != "" {
		msg += " (store " + storeURL + ")"
	}
	fmt.Fprintln(os.Stderr, msg)
	return Serve(ctx, h, ln)
}

// Serve serves h on ln until ctx is done, then shuts it down gracefully,
// giving requests in flight up to 5 seconds.
func Serve(ctx context.Context, h http.Handler, ln net.Listener) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return oneLine(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return oneLine(err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return oneLine(err)
	}
	return nil
}

// Name returns the example's name: the base name of its binary, which
// `go run ./examples/NAME` names after the directory.
func Name() string {
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
}

// Fatal prints err as one line prefixed with the example's name to stderr
// and exits with status 1.
func Fatal(err error) {
	fprintError(os.Stderr, err)
	os.Exit(1)
}

func fprintError(w io.Writer, err error) {
	fmt.Fprintf(w, "%s: %v\n", Name(), oneLine(err))
}

// oneLine flattens an error message that spans lines.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}
