package routetest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
)

// cutShort: a response the client did not get whole is never stored: the
// request's context ended while the handler ran (the client went away), a
// write to the client failed (the handler stopped with half a page), or a
// flush failed.
func cutShort(t *testing.T, fe Frontend, open func(t *testing.T) *echocache.Cache) {
	chunks := []string{"chunk 1;", "chunk 2;", "chunk 3;"}
	for _, tt := range []struct {
		name   string
		writer func() http.ResponseWriter
		cancel bool
		flush  bool
		reason echocache.BypassReason
	}{
		{name: "nok, the client went away while the handler ran", cancel: true, reason: echocache.BypassContext},
		{name: "nok, the handler stops at a failed write", reason: echocache.BypassWriteError,
			writer: func() http.ResponseWriter { return &failingWriter{h: http.Header{}, limit: len(chunks[0]) + 2} }},
		{name: "nok, the handler ignores a failed flush", flush: true, reason: echocache.BypassWriteError,
			writer: func() http.ResponseWriter { return &failingFlusher{&failingWriter{h: http.Header{}, limit: 1 << 20}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			app := fe.NewApp(t, c)
			var calls atomic.Int64
			var cancel context.CancelFunc
			app.Route("/w", Config{TTL: time.Minute}, func(x Ctx) error {
				calls.Add(1)
				x.Response().WriteHeader(http.StatusOK)
				for i, chunk := range chunks {
					if _, err := io.WriteString(x.Response(), chunk); err != nil {
						return nil // the client is gone: nobody to tell
					}
					if tt.flush {
						_ = http.NewResponseController(x.Response()).Flush()
					}
					if i == 0 && cancel != nil {
						cancel()
					}
				}
				return nil
			})
			req := httptest.NewRequest(http.MethodGet, "/w", nil)
			var w http.ResponseWriter = httptest.NewRecorder()
			if tt.cancel {
				var ctx context.Context
				ctx, cancel = context.WithCancel(req.Context())
				req = req.WithContext(ctx)
			}
			if tt.writer != nil {
				w = tt.writer()
			}
			app.ServeHTTP(w, req)
			cancel = nil

			rec := Do(app, "", "/w")
			if rec.Header().Get("X-Cache") != "MISS" || rec.Body.String() != strings.Join(chunks, "") {
				t.Errorf("the next request: X-Cache %q, body %q; want MISS and the whole page", rec.Header().Get("X-Cache"), rec.Body.String())
			}
			settle(t, c)
			if got := c.Stats().Bypasses[tt.reason]; got != 1 {
				t.Errorf("bypasses %v; want one of %s", c.Stats().Bypasses, tt.reason)
			}
			if rec := Do(app, "", "/w"); rec.Header().Get("X-Cache") != "HIT" {
				t.Errorf("then: X-Cache %q; want HIT: the whole page is stored", rec.Header().Get("X-Cache"))
			}
		})
	}
}

// failingWriter is a client that goes away after limit bytes.
type failingWriter struct {
	h     http.Header
	limit int
	n     int
}

var errClientGone = errors.New("write: connection reset by peer")

func (w *failingWriter) Header() http.Header { return w.h }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.limit {
		n := w.limit - w.n
		w.n = w.limit
		return n, errClientGone
	}
	w.n += len(b)
	return len(b), nil
}

// failingFlusher is a writer whose flushes fail.
type failingFlusher struct{ *failingWriter }

func (w *failingFlusher) FlushError() error { return errClientGone }
