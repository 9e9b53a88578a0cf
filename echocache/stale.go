package echocache

import (
	"context"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/internal/keyspace"
)

// stale-while-revalidate: the background refresh of a stale page.

// refresh starts one background refresh of a stale page: the handler runs
// on a copy of the request, detached from the client, with a recorder as
// its response writer.
func (m *routeMW) refresh(ec echo.Context, next echo.HandlerFunc, pageKey string, nonce uint64, variantKey string) {
	if _, running := m.st.refreshs.LoadOrStore(variantKey, struct{}{}); running {
		return
	}
	e := ec.Echo()
	req := ec.Request()
	base := context.WithoutCancel(req.Context())
	r2 := req.Clone(base)
	r2.Method = http.MethodGet
	r2.Body, r2.ContentLength = http.NoBody, 0
	// The refresh wants the whole page: a 304 or 206 answer to this
	// client's conditional or range headers could not be stored.
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		r2.Header.Del(h)
	}
	routePath := ec.Path()
	names := slices.Clone(ec.ParamNames())
	values := slices.Clone(ec.ParamValues())
	// The echo.Context goes back to Echo's pool when this request ends, so
	// everything the refresh needs is copied above.
	go func() {
		defer func() {
			if r := recover(); r != nil {
				m.cache.core().Logf("background refresh of %s panicked: %v", r2.URL, r)
			}
			m.st.refreshs.Delete(variantKey)
			if m.st.refreshDone != nil {
				m.st.refreshDone()
			}
		}()
		ctx, cancel := context.WithTimeout(base, m.cfg.RefreshTimeout)
		defer cancel()
		if m.cfg.LockTimeout > 0 {
			release, acquired := m.cache.core().Lock(ctx, keyspace.RefreshLock+variantKey, m.cfg.LockTimeout)
			if !acquired {
				return // another process refreshes it
			}
			defer release()
		}
		rec := &refreshRecorder{header: http.Header{}}
		nc := e.NewContext(r2.WithContext(ctx), rec)
		nc.SetPath(routePath)
		nc.SetParamNames(names...)
		nc.SetParamValues(values...)
		_ = m.run(nc, next, missParams{pageKey: pageKey, nonce: nonce, hasNonce: true, refresh: true}, nil)
	}()
}

// refreshRecorder is the response writer of a background refresh: the
// capture writer above it keeps the body; the rest is dropped.
type refreshRecorder struct {
	header http.Header
}

func (r *refreshRecorder) Header() http.Header         { return r.header }
func (r *refreshRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *refreshRecorder) WriteHeader(int)             {}
