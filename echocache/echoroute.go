package echocache

import (
	"net/http"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/pagecache"
)

// echoRoute is the route middleware's front end for Echo v4: what the page
// engine (internal/pagecache) needs of echo.Context, for one wrapped
// handler. The rules themselves live in the engine.
type echoRoute struct {
	cfg  *RouteConfig // resolved: Skipper set, Unless folded into it
	next echo.HandlerFunc
}

func (f *echoRoute) Skip(ec echo.Context) bool { return f.cfg.Skipper(ec) }

func (f *echoRoute) AdoptLogger(ec echo.Context) { f.cfg.Cache.adoptEchoLogger(ec) }

func (f *echoRoute) Request(ec echo.Context) *http.Request { return ec.Request() }

func (f *echoRoute) ServesHead(ec echo.Context) bool { return servesHead(ec) }

func (f *echoRoute) Key(ec echo.Context) string { return f.cfg.KeyFunc(ec) }

func (f *echoRoute) Scheme(ec echo.Context, r *http.Request) string { return scheme(ec, r) }

func (f *echoRoute) Pass(ec echo.Context) error { return f.next(ec) }

func (f *echoRoute) Writer(ec echo.Context) http.ResponseWriter { return ec.Response() }

// Inner is the writer under the echo.Response: the capture writer goes
// there, as echo's BodyDump does, so that the echo.Response keeps its
// status, size and hooks.
func (f *echoRoute) Inner(ec echo.Context) http.ResponseWriter { return ec.Response().Writer }

func (f *echoRoute) Run(ec echo.Context, r *http.Request, w http.ResponseWriter) (*http.Request, error) {
	res := ec.Response()
	orig, origReq := res.Writer, ec.Request()
	res.Writer = w
	if r.URL.RawQuery != origReq.URL.RawQuery {
		// Echo keeps the query it parsed across SetRequest: the handler's
		// QueryParam and QueryParams follow r (without ignored
		// parameters), as QueryString does.
		defer pagecache.NarrowQuery(ec.QueryParams(), r)()
	}
	ec.SetRequest(r)
	defer func() {
		res.Writer = orig
		if ec.Request() == r {
			ec.SetRequest(origReq)
		}
	}()
	err := f.next(ec)
	return ec.Request(), err
}

func (f *echoRoute) Failure(err error) bool { return isFailure(err) }

func (f *echoRoute) Filter(ec echo.Context, status int, h http.Header) bool {
	return f.cfg.ResponseFilter(ec, status, h)
}

func (f *echoRoute) StaleWriter(ec echo.Context, status int, size int64) http.ResponseWriter {
	res := ec.Response()
	if res.Committed {
		// The held failure committed the echo.Response but reached nobody.
		res.Status, res.Size = status, size
		return res.Writer
	}
	return res
}

// Detach copies the route and its path parameters: the echo.Context goes
// back to Echo's pool when the request ends.
func (f *echoRoute) Detach(ec echo.Context) func(*http.Request, http.ResponseWriter) echo.Context {
	e := ec.Echo()
	routePath := ec.Path()
	names := slices.Clone(ec.ParamNames())
	values := slices.Clone(ec.ParamValues())
	return func(r *http.Request, w http.ResponseWriter) echo.Context {
		nc := e.NewContext(r, w)
		nc.SetPath(routePath)
		nc.SetParamNames(names...)
		nc.SetParamValues(values...)
		return nc
	}
}

// servesHead reports whether Echo routed a HEAD request to the route its
// GET goes to, so that the GET's page is what the route would answer. A
// route registered for GET only gets Echo's 405 handler for HEAD (with the
// Allow list in the context), or, in a group with middleware, the group's
// catch-all 404; a request before routing (e.Pre) or that matched no
// route has no path. Answering any of those from the cache would change
// what the route answers. It routes the request once more, for HEAD only.
func servesHead(ec echo.Context) bool {
	e := ec.Echo()
	if e == nil || ec.Path() == "" || ec.Get(echo.ContextKeyHeaderAllow) != nil {
		return false
	}
	req := ec.Request()
	router := e.Router()
	if hosts := e.Routers(); len(hosts) > 0 {
		if r, ok := hosts[req.Host]; ok {
			router = r
		}
	}
	probe := e.NewContext(req, nil)
	router.Find(http.MethodGet, echo.GetPath(req), probe)
	return probe.Path() == ec.Path()
}

// isFailure reports whether a handler error is a failure stale-if-error
// covers: one that Echo's DefaultHTTPErrorHandler answers with a 5xx. That
// is any error but an *echo.HTTPError with a code below 500, looked at as
// that handler does: the error itself (a wrapped one is a 500 to it), or
// the *echo.HTTPError in its Internal.
func isFailure(err error) bool {
	he, ok := err.(*echo.HTTPError)
	if !ok {
		return true
	}
	if in, ok := he.Internal.(*echo.HTTPError); ok {
		he = in
	}
	return he.Code >= 500
}

// scheme is c.Scheme() without its cost (an IP parse of the peer) when no
// forwarding header could change the answer.
func scheme(c echo.Context, r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if !pagecache.Forwarded(r.Header) {
		if e := c.Echo(); e == nil || e.SchemeExtractor == nil {
			return "http"
		}
	}
	return c.Scheme()
}

// errorWatches holds, per Echo instance (held weakly: the entry goes with
// it), the sync.Once of wrapping its HTTPErrorHandler.
var errorWatches sync.Map // weak.Pointer[echo.Echo] -> *sync.Once

// watchErrors wraps e.HTTPErrorHandler, once per Echo, so that an error
// handed to it while a cached handler runs (c.Error, which
// middleware.Recover calls with a panic it recovered) marks that response
// failed (pagecache.Fail), and no route cache it runs under stores it.
// Every request through a route cache calls it first: the sync.Once
// orders the wrap before their own calls of the handler.
func watchErrors(e *echo.Echo) {
	if e == nil {
		return
	}
	wp := weak.Make(e)
	v, ok := errorWatches.Load(wp)
	if !ok {
		var loaded bool
		v, loaded = errorWatches.LoadOrStore(wp, new(sync.Once))
		if !loaded {
			runtime.AddCleanup(e, func(k weak.Pointer[echo.Echo]) { errorWatches.Delete(k) }, wp)
		}
	}
	v.(*sync.Once).Do(func() {
		h := e.HTTPErrorHandler
		if h == nil {
			h = e.DefaultHTTPErrorHandler
		}
		e.HTTPErrorHandler = func(err error, c echo.Context) {
			if r := c.Request(); r != nil {
				pagecache.Fail(r.Context())
			}
			h(err, c)
		}
	})
}
