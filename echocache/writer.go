package echocache

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"slices"

	"github.com/labstack/echo/v4"
)

// The response writer that passes a miss to the client and keeps a copy.

// captureWriter is the response writer of a miss: it passes the response
// to the client and keeps a copy of it (status, the headers the handler
// set, and the body up to max bytes). With hold set it keeps a 5xx response
// back, so that a stale page can be served in its place.
type captureWriter struct {
	http.ResponseWriter
	before       http.Header // the header before the handler ran
	max          int64
	hold         bool
	statusHeader string

	wroteHeader bool
	held        bool
	hijacked    bool
	overflow    bool
	status      int
	body        []byte

	// Captured when the header was written.
	captured     http.Header // what the handler added or changed
	cacheControl []string
	vary         []string
	varyStar     bool
	setCookie    bool
}

// notStored are never stored: per-connection, per-message or ours.
var notStored = map[string]bool{
	"Age": true, "Date": true, "Set-Cookie": true, "Content-Length": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func (w *captureWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.ResponseWriter.Header()
	w.captured = http.Header{}
	for k, vs := range h {
		if notStored[textproto.CanonicalMIMEHeaderKey(k)] || k == w.statusHeader {
			continue
		}
		if b, ok := w.before[k]; ok && slices.Equal(b, vs) {
			continue
		}
		w.captured[k] = slices.Clone(vs)
	}
	w.cacheControl = slices.Clone(h[echo.HeaderCacheControl])
	w.setCookie = len(h[echo.HeaderSetCookie]) > 0
	w.vary, w.varyStar = responseVary(h)
	if w.hold && code >= 500 {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.overflow {
		if int64(len(w.body))+int64(len(b)) > w.max {
			if w.held {
				w.release()
			}
			w.overflow, w.body = true, nil
		} else {
			w.body = append(w.body, b...)
			if w.held {
				return len(b), nil
			}
		}
	}
	return w.ResponseWriter.Write(b)
}

// release sends a held response on after all.
func (w *captureWriter) release() {
	w.held = false
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.body) > 0 {
		_, _ = w.ResponseWriter.Write(w.body)
	}
}

// FlushError flushes the response; a held response is released first.
func (w *captureWriter) FlushError() error {
	if w.held {
		w.release()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *captureWriter) Flush() {
	if err := w.FlushError(); err != nil && errors.Is(err, http.ErrNotSupported) {
		panic(errors.New("echocache: response writer flushing is not supported"))
	}
}

// Hijack implements http.Hijacker; a hijacked response is not stored.
func (w *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *captureWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

const headerETag = "Etag"
