package httpcache_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/httpcache"
	"github.com/echocache/echocache/internal/routetest"
)

// TestRouteSuite runs the route cache's HTTP behaviour suite on the
// net/http middleware, routed by the standard mux.
func TestRouteSuite(t *testing.T) { routetest.Run(t, httpFrontend{}) }

type httpFrontend struct{}

// ErrorsInside: a net/http handler returns no error; the adapter answers
// a suite handler's error inside the route (routetest.ErrorsInside).
func (httpFrontend) ErrorsInside() {}

func (httpFrontend) NewApp(t testing.TB, c *echocache.Cache) routetest.App {
	return &httpApp{ServeMux: http.NewServeMux(), c: c}
}

type httpApp struct {
	*http.ServeMux
	c *echocache.Cache
}

func (a *httpApp) Route(path string, cfg routetest.Config, h routetest.Handler) {
	mw := httpcache.CachedWithConfig(httpcache.RouteConfig{
		Skipper:              cfg.Skipper,
		Cache:                a.c,
		TTL:                  cfg.TTL,
		KeyPrefix:            cfg.KeyPrefix,
		KeyFunc:              cfg.KeyFunc,
		IgnoreQueryParams:    cfg.IgnoreQueryParams,
		DropQuery:            cfg.DropQuery,
		VaryHeaders:          cfg.VaryHeaders,
		AllowedStatuses:      cfg.AllowedStatuses,
		MaxBodySize:          cfg.MaxBodySize,
		AllowAuthorization:   cfg.AllowAuthorization,
		ResponseFilter:       cfg.ResponseFilter,
		TTLFromCacheControl:  cfg.TTLFromCacheControl,
		StatusHeader:         cfg.StatusHeader,
		CacheStatusName:      cfg.CacheStatusName,
		StaleWhileRevalidate: cfg.StaleWhileRevalidate,
		StaleIfError:         cfg.StaleIfError,
		LockTimeout:          cfg.LockTimeout,
	})
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(httpCtx{w, r}); err != nil {
			// What Echo's default error handler answers.
			code := http.StatusInternalServerError
			if se, ok := err.(routetest.StatusError); ok {
				code = int(se)
			}
			http.Error(w, http.StatusText(code), code)
		}
	})
	if cfg.RecoverInside {
		handler = recoverer(handler)
	}
	handler = mw(handler)
	if cfg.Outer != nil {
		cached := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cfg.Outer(w, r)
			cached.ServeHTTP(w, r)
		})
	}
	a.Handle(strings.TrimSuffix(path, "*"), handler)
}

// recoverer answers a panic with a 500, as chi's middleware.Recoverer
// does (after the handler wrote, that status can no longer go out).
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type httpCtx struct {
	w http.ResponseWriter
	r *http.Request
}

func (x httpCtx) Request() *http.Request        { return x.r }
func (x httpCtx) Response() http.ResponseWriter { return x.w }
func (x httpCtx) SetTTL(ttl time.Duration)      { httpcache.SetTTL(x.r, ttl) }
func (x httpCtx) Tag(tags ...string)            { httpcache.Tag(x.r, tags...) }
