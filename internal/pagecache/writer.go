package pagecache

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// The response writer that passes a miss to the client and keeps a copy.

// captureWriter is the response writer of a miss: it passes the response
// to the client and keeps a copy of it (status, the headers the handler
// set, and the body up to max bytes). With hold set it keeps a 5xx response
// back, so that a stale page can be served in its place.
//
// Every header rule reads names in any case: a handler may assign the
// header map directly (h["cache-control"] = ...), which net/http sends as
// it is.
type captureWriter struct {
	http.ResponseWriter
	before       http.Header // the header before the handler ran
	max          int64
	hold         bool
	statusHeader string
	onHeader     func() // called as the final header is written (Cache-Status)

	wroteHeader bool
	held        bool
	hijacked    bool
	overflow    bool
	failed      bool // a write or flush to the client failed or was short
	restatus    bool // a final status other than status was written after it
	status      int
	body        []byte

	// Captured when the header was written.
	captured      http.Header // what the handler added or changed
	cacheControl  []string
	vary          []string
	varyStar      bool
	setCookie     bool
	trailer       bool     // the response declares trailers
	eventStream   bool     // Content-Type text/event-stream
	contentLength []string // the Content-Length the handler declared
}

// notStored are never stored: per-connection, per-message or ours.
var notStored = map[string]bool{
	"Age": true, "Date": true, "Set-Cookie": true, "Content-Length": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func (w *captureWriter) WriteHeader(code int) {
	if w.wroteHeader {
		if code >= 200 && code != w.status {
			// Another final status once one went out: what net/http's
			// recovering middleware (and code like it) writes after a
			// panic, which cannot reach the client any more.
			w.restatus = true
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints, say): the final
		// response follows, and it is the one that is stored.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.ResponseWriter.Header()
	w.captured = http.Header{}
	var varyValues []string
	for k, vs := range h {
		name := textproto.CanonicalMIMEHeaderKey(k)
		switch name {
		case "Cache-Control":
			w.cacheControl = append(w.cacheControl, vs...)
		case "Set-Cookie":
			w.setCookie = w.setCookie || len(vs) > 0
		case "Vary":
			varyValues = append(varyValues, vs...)
		case "Content-Length":
			w.contentLength = append(w.contentLength, vs...)
		case "Trailer":
			w.trailer = w.trailer || len(vs) > 0
		case "Content-Type":
			w.eventStream = w.eventStream || slices.ContainsFunc(vs, isEventStream)
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailer = true
		}
		if notStored[name] || name == w.statusHeader {
			continue
		}
		if b, ok := w.before[k]; ok && slices.Equal(b, vs) {
			continue
		}
		w.captured[k] = slices.Clone(vs)
	}
	w.vary, w.varyStar = responseVary(varyValues)
	if w.onHeader != nil {
		w.onHeader()
	}
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
	return w.write(b)
}

// write passes b to the client, noting a failed or short write: the client
// has not received what was captured, and the handler may have stopped
// short because of it.
func (w *captureWriter) write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if err != nil || n < len(b) {
		w.failed = true
	}
	return n, err
}

// release sends a held response on after all.
func (w *captureWriter) release() {
	w.held = false
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.body) > 0 {
		_, _ = w.write(w.body)
	}
}

// FlushError flushes the response; a held response is released first.
func (w *captureWriter) FlushError() error {
	if w.held {
		w.release()
	}
	err := http.NewResponseController(w.ResponseWriter).Flush()
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		w.failed = true
	}
	return err
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

// isEventStream reports whether a Content-Type is text/event-stream, the
// media type of server-sent events (HTML Living Standard, 9.2), in any
// case and with any parameters.
func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}
