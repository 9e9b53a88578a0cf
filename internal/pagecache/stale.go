package pagecache

import (
	"context"
	"net/http"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/keyspace"
)

// stale-while-revalidate: the background refresh of a stale page.

// refresh starts one background refresh of a stale page: the handler runs
// on a copy of the request, detached from the client, with a recorder as
// its response writer, and writes the page on its own goroutine (no client
// waits for it); Flush waits for it.
//
// A refresh stores only what a miss of the same request, under the same
// outer middleware, would store: the copy is made a plain GET (no body, no
// Range or precondition, in any spelling), and is not run at all when the
// miss path would refuse it anyway (requestRefusal: Authorization in any
// spelling); the recorder starts with the response header the middleware
// outside the route had set (a Cache-Control: private for a session, say),
// as the miss's capture writer does; and its response goes through the
// miss's rules (run, storable).
func (r *Route[C]) refresh(c C, req *http.Request, pageKey string, e *entry, atPage bool) {
	m := r.Engine
	nonce, variantKey, pageVary := e.nonce, string(e.key), e.varyNames()
	// Detached from the client, and from the miss of any route this one
	// runs inside: SetTTL and Tag in the refresh reach this route only.
	base := withRequest(core.WithoutBudget(context.WithoutCancel(req.Context())), nil)
	r2 := req.Clone(base)
	r2.Method = http.MethodGet
	r2.Body, r2.ContentLength = http.NoBody, 0
	// The refresh wants the whole page: a 304 or 206 answer to this
	// client's conditional or range headers could not be stored.
	dropConditional(r2.Header)
	if reason := m.requestRefusal(r2); reason != "" {
		m.cache.CountBypass(reason)
		return
	}
	if _, running := m.st.refreshs.LoadOrStore(variantKey, struct{}{}); running {
		return
	}
	outer := r.fe.Inner(c).Header().Clone()
	if outer == nil {
		outer = http.Header{}
	}
	// The framework's request value may be reused when this request ends,
	// so Detach copies now what the refresh needs.
	mk := r.fe.Detach(c)
	tk := m.st.writes.beginBackground() // Flush waits for it
	go func() {
		defer func() {
			if v := recover(); v != nil {
				m.cache.Logf("background refresh of %s panicked: %v", r2.URL, v)
			}
			m.st.refreshs.Delete(variantKey)
			m.st.writes.end(tk, nil, false)
			if m.st.hooks.RefreshDone != nil {
				m.st.hooks.RefreshDone()
			}
		}()
		ctx, cancel := context.WithTimeout(base, m.cfg.RefreshTimeout)
		defer cancel()
		if m.cfg.LockTimeout > 0 {
			release, acquired := m.cache.Lock(ctx, keyspace.RefreshLock+variantKey, m.cfg.LockTimeout)
			if !acquired {
				return // another process refreshes it
			}
			defer release()
		}
		rec := &refreshRecorder{header: outer}
		r3 := r2.WithContext(ctx)
		nc := mk(r3, rec)
		_ = r.run(nc, r3, missParams{pageKey: pageKey, nonce: nonce, hasNonce: true, atPage: atPage, pageVary: pageVary, refresh: true}, nil)
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
