package pagecache

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// Cache-Status (RFC 9211): every response a route sees carries the
// route's member, added at the end of any Cache-Status the handler (or a
// cache behind it) set, since the last member is the cache closest to the
// client (RFC 9211, section 2). The member is added when the response's
// header is written, never afterwards:
//
//   - a hit or a stale page served while it is refreshed: before the
//     stored page is written ("hit; ttl=N", N negative when stale;
//     "hit; ttl=N; detail=local" when the page was read from the copy a
//     local tier keeps in the process, stores.LocalTier);
//   - a bypass (Skipper, no store, method, a GET with a body,
//     Authorization, no key) and a failed lookup: when the handler writes
//     its header, through a memberWriter ("fwd=bypass; detail=...",
//     "fwd=method", "fwd=miss; detail=store-error");
//   - a miss: when the handler writes its header, through the capture
//     writer, judged by every rule the status and the header decide
//     ("fwd=uri-miss; ttl=N; stored", or "detail=set-cookie" ...; a
//     request whose context has already ended then, the client gone or
//     a deadline of inner middleware such as echo's ContextTimeout
//     passed, says "detail=context": it is never stored). What
//     is only known after the header went out (a body over MaxBodySize
//     without a Content-Length that says so, a body shorter than its
//     Content-Length, the client leaving afterwards, SetTTL or Tag after the first
//     write, the ResponseFilter, the store write itself) cannot change
//     it: such a response says "stored" and is not, which Stats.Bypasses,
//     the observers and the log tell. "stored" means the page is handed
//     to its write: on a networked store the write follows the response
//     (write.go), so the member goes out before the write has begun, and
//     a write dropped (write-backlog), refused after an invalidation
//     (invalidated) or failed is one of those cases;
//   - a handler that returns an error or panics before writing: in the
//     header the framework's error handler then writes ("detail=error",
//     "detail=panic"), and one that writes nothing: "detail=no-response";
//   - a stale page in place of a failure: with the stale page
//     ("fwd=stale; fwd-status=503; ttl=-N").

// DefaultCacheStatusName is the name a route's cache gives itself in
// Cache-Status.
const DefaultCacheStatusName = "echocache"

const headerCacheStatus = "Cache-Status"

// cacheStatus writes one route's Cache-Status members. Its members are
// immutable strings, built once: the bypasses' and failures' at New, a
// hit's once per distinct ttl (see hit). It is safe for concurrent use.
type cacheStatus struct {
	name  string
	fixed map[fixedKey]string
	// hits holds recent hit members by ttl: a hot page's member changes
	// once a second, so a hit finds its string here instead of building
	// one.
	hits    [64]atomic.Pointer[ttlMember]
	forever string // a hit on a page without expiry
	// localHits and localForever are the same for a page read from a
	// local tier's copy in the process (detail=local).
	localHits    [64]atomic.Pointer[ttlMember]
	localForever string
}

type fixedKey struct {
	r      core.Result
	detail string
}

type ttlMember struct {
	ttl    int64
	member string
}

func newCacheStatus(name string) *cacheStatus {
	cs := &cacheStatus{name: name, fixed: map[fixedKey]string{}}
	for _, d := range []string{BypassSkipper, BypassNoStore, BypassMethod, BypassBody, BypassAuthorization, BypassKey} {
		cs.fixed[fixedKey{core.ResultBypass, d}] = cs.build(core.CacheStatus{Result: core.ResultBypass, Detail: d})
	}
	for _, d := range []string{core.DetailStoreError, core.DetailStoreUnavailable, core.DetailContext} {
		cs.fixed[fixedKey{core.ResultError, d}] = cs.build(core.CacheStatus{Result: core.ResultError, Detail: d})
	}
	cs.forever = cs.build(core.CacheStatus{Result: core.ResultHit, NoExpiry: true})
	cs.localForever = cs.build(core.CacheStatus{Result: core.ResultHit, NoExpiry: true, Detail: core.DetailLocal})
	return cs
}

func (cs *cacheStatus) build(st core.CacheStatus) string {
	return string(core.AppendCacheStatus(make([]byte, 0, 64), cs.name, st))
}

// passed returns the member of a request passed to the handler without a
// miss: a bypass, or a lookup that failed.
func (cs *cacheStatus) passed(r core.Result, detail string) string {
	if cs == nil {
		return ""
	}
	if s, ok := cs.fixed[fixedKey{r, detail}]; ok {
		return s
	}
	return cs.build(core.CacheStatus{Result: r, Detail: detail})
}

// hit returns the member of e served at now from the store: fresh, or
// stale while it is refreshed (a negative ttl); local says e was read
// from a local tier's copy (detail=local).
func (cs *cacheStatus) hit(e *entry, now int64, local bool) string {
	if cs == nil {
		return ""
	}
	hits, detail := &cs.hits, ""
	if local {
		hits, detail = &cs.localHits, core.DetailLocal
	}
	if e.freshUntil == math.MaxInt64 {
		if local {
			return cs.localForever
		}
		return cs.forever
	}
	left := time.Duration(e.freshUntil - now)
	ttl := int64(left / time.Second)
	if left%time.Second < 0 {
		ttl-- // rounded down, as AppendCacheStatus does
	}
	slot := &hits[uint64(ttl)%uint64(len(hits))]
	if m := slot.Load(); m != nil && m.ttl == ttl {
		return m.member
	}
	r := core.ResultHit
	if left < 0 {
		r = core.ResultStale
	}
	m := &ttlMember{ttl: ttl, member: cs.build(core.CacheStatus{Result: r, TTL: time.Duration(ttl) * time.Second, Detail: detail})}
	slot.Store(m)
	return m.member
}

// staleOnError returns the member of a stale page served in place of a
// failure: the status of the held response (fwdStatus), or 0 for a
// handler error.
func (cs *cacheStatus) staleOnError(e *entry, now int64, fwdStatus int) string {
	if cs == nil {
		return ""
	}
	st := core.CacheStatus{Result: core.ResultStale, Fwd: core.FwdStale, TTL: time.Duration(e.freshUntil - now), FwdStatus: fwdStatus, Detail: BypassStatus}
	if fwdStatus == 0 {
		st.Detail = BypassError
	}
	return cs.build(st)
}

// collapsed returns the member of a miss served the page another request
// computed.
func (cs *cacheStatus) collapsed(fwd string) string {
	if cs == nil {
		return ""
	}
	return cs.build(core.CacheStatus{Result: core.ResultMiss, Fwd: fwd, Collapsed: true})
}

// missed returns the member of a miss that is not stored for reason.
func (cs *cacheStatus) missed(fwd, reason string) string {
	if cs == nil {
		return ""
	}
	return cs.build(core.CacheStatus{Result: core.ResultMiss, Fwd: fwd, Detail: reason})
}

// missFwd returns the fwd parameter of a miss after lk: stale when an
// entry was found past its lifetime (or its tags'), vary-miss when the
// page was found but not the request's variant, else uri-miss.
func missFwd(lk *lookup) string {
	switch {
	case lk.state == lookError || lk.expired:
		return core.FwdStale
	case lk.hasNonce && !lk.otherURI:
		return core.FwdVaryMiss
	}
	return core.FwdURIMiss
}

// otherURI reports whether e, the page record found under the request's
// page key, was stored for another scheme or host: the request's URI has
// no response stored, however its variants would compare.
func (r *Route[C]) otherURI(c C, req *http.Request, pageKey string, e *entry) bool {
	if r.keying.custom {
		return false // no scheme nor host in the key
	}
	k := e.key // the layout of appendVariant
	if len(k) < len(pageKey)+10 {
		return true
	}
	k = k[len(pageKey)+10:]
	if i := bytes.IndexByte(k, 0); i >= 0 {
		k = k[:i] // the vary values follow
	}
	sch, host := r.fe.Scheme(c, req), req.Host
	return len(k) != len(sch)+3+len(host) || !equalLower(k[:len(sch)], sch) ||
		string(k[len(sch):len(sch)+3]) != "://" || !equalLower(k[len(sch)+3:], host)
}

// missMember returns the member of a miss whose response header is being
// written: stored, with its ttl, when every rule the status and the header
// decide allows it, else the reason of the first that does not. ended
// tells that the request's context has ended by then (the client left,
// or a deadline inner middleware set passed): detail=context.
func (r *Route[C]) missMember(req *http.Request, cw *captureWriter, rr *request, p *missParams, ended bool) string {
	m := r.Engine
	if p.noStore {
		return m.cs.missed(p.fwd, p.pass)
	}
	if ended {
		// Not stored, whatever the response: an ended context may have
		// shaped it (storable).
		return m.cs.missed(p.fwd, BypassContext)
	}
	if reason := r.refusal(req, cw, rr, false); reason != "" {
		return m.cs.missed(p.fwd, reason)
	}
	ttl := m.ttlOf(cw, rr)
	if ttl == 0 {
		return m.cs.missed(p.fwd, BypassTTL)
	}
	return m.cs.build(core.CacheStatus{Result: core.ResultMiss, Fwd: p.fwd, Stored: true, TTL: ttl, NoExpiry: ttl == stores.NoExpiry, Detail: p.detail})
}

// addMember adds a member at the end of h's Cache-Status.
func addMember(h http.Header, member string) {
	if member != "" {
		v := h[headerCacheStatus]
		h[headerCacheStatus] = append(v[:len(v):len(v)], member)
	}
}

// pass runs the handler uncached with req (nil: the framework's request,
// as it came), its response carrying member (none when it is "").
func (r *Route[C]) pass(c C, req *http.Request, member string) error {
	if member == "" && req == nil {
		return r.fe.Pass(c)
	}
	if req == nil {
		req = r.fe.Request(c)
	}
	if member == "" {
		_, err := r.fe.Run(c, req, r.fe.Inner(c))
		return err
	}
	w := &memberWriter{ResponseWriter: r.fe.Inner(c), member: member}
	// Also after an error or a panic: the header the framework's error
	// handler writes carries the member.
	defer w.addMember()
	_, err := r.fe.Run(c, req, w)
	return err
}

// memberWriter is the response writer of a request passed to the handler
// uncached: it adds the route's Cache-Status member when the header is
// written, after whatever the handler put there.
type memberWriter struct {
	http.ResponseWriter
	member string
	done   bool
}

func (w *memberWriter) addMember() {
	if !w.done {
		w.done = true
		addMember(w.ResponseWriter.Header(), w.member)
	}
}

func (w *memberWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.addMember() // not on a 1xx: the final response follows
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *memberWriter) Write(b []byte) (int, error) {
	w.addMember()
	return w.ResponseWriter.Write(b)
}

// FlushError flushes the response, whose header goes out with it.
func (w *memberWriter) FlushError() error {
	w.addMember()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *memberWriter) Flush() {
	if err := w.FlushError(); err != nil && errors.Is(err, http.ErrNotSupported) {
		panic(errors.New("echocache: response writer flushing is not supported"))
	}
}

// Hijack implements http.Hijacker.
func (w *memberWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.done = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *memberWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
