package main

import (
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/echocache/echocache/echocache"
	echocacheprom "github.com/echocache/echocache/metrics/prometheus"
	"github.com/echocache/echocache/stores"
)

// pageTTL is how long GET / is fresh. Tests shorten it.
var pageTTL = time.Minute

// newServer builds the app on store: GET / is a cached page, POST / changes
// what it shows and drops the cached copy, /metrics serves Prometheus
// metrics, all on one Echo instance with the cache installed by e.Use.
func newServer(store stores.Store) (*echo.Echo, error) {
	// The Config's zero values are the defaults: 250ms per store call, a
	// breaker after 5 failures in a row, log lines to slog.Default().
	cache, err := echocache.NewWithConfig(store, echocache.Config{})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		echocacheprom.NewCollector(cache, echocacheprom.CollectorOpts{}),
	)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true

	// Middleware order, outermost first. Recover, RequestID, CORS and Gzip
	// go before (outside) the cache: headers they set before the handler
	// runs are not stored, so each response, hits included, gets its own
	// request ID and the CORS headers of its own Origin, and Gzip
	// compresses the stored page for the clients that ask for it. (Their
	// Vary: Origin and Vary: Accept-Encoding make the cache keep a variant
	// of a page per Origin and Accept-Encoding value.) Recover must be
	// outside: a panic it recovered inside the cache after the handler
	// wrote would look like a finished response.
	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: []string{"https://app.example"}}))
	e.Use(middleware.Gzip())
	e.Use(cache.CachedWithConfig(echocache.RouteConfig{
		TTL: pageTTL,
		// Served, marked STALE, for 30s after the TTL while one request
		// refreshes the page in the background.
		StaleWhileRevalidate: 30 * time.Second,
		// Served in place of a 5xx or an error for up to 10 minutes.
		StaleIfError: 10 * time.Minute,
		// Processes sharing the store render a missing page once; an answer
		// that is not stored does not make the others wait.
		LockTimeout: 5 * time.Second,
		Skipper: func(c echo.Context) bool {
			return c.Path() == "/metrics"
		},
	}))

	var posts atomic.Int64
	e.GET("/", func(c echo.Context) error {
		return c.HTML(http.StatusOK, fmt.Sprintf("<p>%d posts; rendered at %s</p>\n",
			posts.Load(), html.EscapeString(time.Now().Format(time.RFC3339Nano))))
	})
	e.POST("/", func(c echo.Context) error {
		n := posts.Add(1)
		// POST is never cached; it drops the page it changed.
		if err := cache.DeletePage(c.Request().Context(), "/"); err != nil {
			slog.Warn("production: the cached page stays until its TTL", "err", err)
		}
		return c.String(http.StatusOK, fmt.Sprintf("post %d\n", n))
	})
	// Uncached (the Skipper above); compressed by the Gzip middleware, so
	// not by promhttp too.
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true})))
	return e, nil
}
