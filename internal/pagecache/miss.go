package pagecache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
	"github.com/echocache/echocache/stores"
)

// The miss path: running the handler, deciding whether its response may be
// stored, and building the entry.

// missParams describes a miss to run.
type missParams struct {
	pageKey  string
	stale    *entry // served on a handler failure (stale-if-error)
	nonce    uint64
	hasNonce bool
	// atPage: the page key holds this variant, or nothing; else another
	// variant whose Vary names are pageVary.
	atPage   bool
	pageVary []string
	noStore  bool   // run and pass through only (HEAD)
	pass     string // why noStore: BypassHead or BypassConditional
	refresh  bool   // background refresh: errors are logged
	fwd      string // Cache-Status's fwd: why the request went forward
	// detail is what the lookup found wrong, when it found something:
	// DetailCorrupt for a record that did not decode. It goes into the
	// miss's lookup event and, when nothing else is said, its member.
	detail string
	// handoff, when not nil, holds what the miss lets go of once the page
	// is written (see write.go).
	handoff *handoff
	// passLock, when not nil, marks the lock the miss holds pass
	// (core.Cache.MarkPass), for an answer that cannot be shared.
	passLock func()
}

// run runs the handler for a miss, streams its response to the client while
// capturing it, and stores it when every rule allows. t, when not nil, is
// the turn in a flight the outcome is reported to.
func (r *Route[C]) run(c C, req *http.Request, p missParams, t *flight.Turn[pageFlight]) error {
	m, fe := r.Engine, r.fe
	inner := fe.Inner(c)
	h := inner.Header()
	if m.statusHeader != "" && !p.refresh {
		h.Set(m.statusHeader, StatusMiss)
	}
	if p.noStore && p.stale == nil {
		return r.pass(c, req, m.cs.missed(p.fwd, p.pass))
	}
	before := h.Clone()
	ctx := req.Context()
	rr := &request{cache: m.cache, ctx: ctx, parent: requestOf(ctx)}
	cw := &captureWriter{
		ResponseWriter: inner,
		before:         before,
		max:            m.cfg.MaxBodySize,
		hold:           p.stale != nil,
		statusHeader:   m.statusHeader,
	}
	member := m.cs != nil && !p.refresh // the response gets a Cache-Status member
	if member {
		cw.onHeader = func() {
			// The request as the handler left it when it wrote: inner
			// middleware such as echo's ContextTimeout replaces it.
			ended := ctx.Err() != nil || fe.Request(c).Context().Err() != nil
			addMember(h, r.missMember(req, cw, rr, &p, ended))
		}
	}
	finished := false
	defer func() {
		if !finished {
			m.cache.CountBypass(BypassPanic) // the panic goes on up the chain
			if p.stale != nil {
				m.cache.CountLookup(ctx, core.FeaturePage, core.ResultMiss, "")
			}
			if member && !cw.wroteHeader {
				addMember(h, m.cs.missed(p.fwd, BypassPanic)) // for whoever recovers it
			}
		}
	}()
	epoch := m.st.writes.epoch.Load() // before the handler reads anything
	after, err := fe.Run(c, req.WithContext(withRequest(ctx, rr)), cw)
	finished = true
	ended := contextEnded(ctx, after.Context())

	if p.stale != nil && (cw.held || err != nil && !cw.wroteHeader && fe.Failure(err)) {
		// stale-if-error: the client gets the stale page, not the failure.
		m.cache.CountLookup(ctx, core.FeaturePage, core.ResultStale, "")
		resetHeader(h, before)
		fwdStatus := 0 // a handler error
		if cw.held {
			fwdStatus = cw.status
		}
		w := fe.StaleWriter(c, p.stale.status, int64(len(p.stale.body)))
		now := m.clock()
		return m.serve(req, ifNoneMatch(req.Header), w, p.stale, StatusStale, m.cs.staleOnError(p.stale, now, fwdStatus), now)
	}
	if p.stale != nil {
		m.cache.CountLookup(ctx, core.FeaturePage, core.ResultMiss, "") // the failure, if any, was not replaced
	}
	if cw.held {
		cw.release()
	}
	if member && !cw.wroteHeader && !cw.hijacked {
		// The member goes into the header the framework writes: its error
		// handler's response, or an empty one.
		reason := BypassNoResponse
		switch {
		case err != nil:
			reason = BypassError
		case p.noStore:
			reason = p.pass
		}
		addMember(h, m.cs.missed(p.fwd, reason))
	}
	if err != nil {
		m.cache.CountBypass(BypassError)
		if t != nil && !fe.Failure(err) {
			r.passed(t, &p) // a 404, say, is the request's answer
		}
		if p.refresh {
			m.cache.Logf("background refresh of %s: %v", req.URL, err)
		}
		return err
	}
	if p.noStore {
		return nil
	}
	reason, ttl := r.storable(c, req, cw, rr, ended)
	if reason != "" {
		m.cache.CountBypass(reason)
		if p.refresh {
			m.cache.Logf("background refresh of %s not stored: %s (status %d)", req.URL, reason, cw.status)
		}
		if t != nil && wholeAnswer(reason, cw.status) {
			r.passed(t, &p)
		}
		return nil
	}
	rec, variantKey, ttl := r.entryFor(c, req, p, cw, rr, ttl)
	// One key per page (keys.go): the page key when it holds this variant
	// or nothing, or when the response's Vary names are not the page
	// record's (the page record says what to vary on); else the variant
	// key.
	key := variantKey
	if p.atPage || !slices.Equal(cw.vary, p.pageVary) {
		key = p.pageKey
	}
	pw := &pageWrite{
		items:   map[string][]byte{key: rec},
		ttl:     ttl,
		epoch:   epoch,
		inline:  p.refresh || inProcess(m.cache),
		visible: !inProcess(m.cache),
	}
	if t != nil {
		t.Share(pageFlight{entry: rec, vary: cw.vary})
	}
	if p.handoff != nil {
		pw.after = p.handoff.take()
	}
	m.store(pw)
	return nil
}

// passed records that a miss's answer cannot be shared by its nature: the
// requests waiting for it in the process are released (t), and those of
// other processes through the lock, which is marked pass in place of
// being released (after the response, with the release).
func (r *Route[C]) passed(t *flight.Turn[pageFlight], p *missParams) {
	t.Pass()
	if p.passLock != nil && p.handoff != nil {
		p.handoff.fns = append([]func(){p.passLock}, p.handoff.fns...)
	}
}

// contextEnded reports whether a request's context ended while the handler
// ran: the client went away, or a deadline passed, and the handler may
// have cut its answer short. before is the context the handler was given;
// after, the request's context when it returned, which inner middleware
// such as echo's ContextTimeout replaces (and cancels on its way out, so
// only its deadline counts).
func contextEnded(before, after context.Context) bool {
	return before.Err() != nil || errors.Is(after.Err(), context.DeadlineExceeded)
}

// wholeAnswer reports whether a response not stored for reason was still
// a complete answer, one that its own request needed (a cookie, private, a
// 404), as opposed to a failure (an error, a 5xx, a response cut short).
// A whole answer cannot be shared by its nature: the requests waiting for
// it are released to run for themselves, and the page is passed for a
// while (passFor). A failure is retried by one waiter first, so that a
// failing backend does not get every waiter at once.
func wholeAnswer(reason string, status int) bool {
	switch reason {
	case BypassNoResponse, BypassContext, BypassWriteError, BypassLength, BypassTagError, BypassError:
		return false
	case BypassStatus:
		return status < 500
	}
	return true
}

// resetHeader makes h what it was in before.
func resetHeader(h, before http.Header) {
	for k := range h {
		if _, ok := before[k]; !ok {
			delete(h, k)
		}
	}
	for k, v := range before {
		h[k] = v
	}
}

// authorized reports whether a request carries credentials that keep it
// out of the cache: an Authorization header, in any spelling, unless
// AllowAuthorization (RFC 9111, 3.5).
func (m *Engine) authorized(req *http.Request) bool {
	return !m.cfg.AllowAuthorization && hasHeader(req.Header, "Authorization")
}

// requestRefusal returns why no response to req may be stored, whatever
// the handler answers, or "": the request's rules, which the miss path and
// a background refresh share (the response's are in storable).
func (m *Engine) requestRefusal(req *http.Request) string {
	switch {
	case req.ContentLength != 0:
		return BypassBody
	case m.authorized(req):
		return BypassAuthorization
	case req.Method == http.MethodHead:
		// A HEAD response has no body to store, and a handler may answer
		// HEAD differently; only GET fills the cache.
		return BypassHead
	case isConditional(req.Header):
		// Its answer (206, 304, or a 200 chosen by the condition) is not
		// the page a plain request gets. Hits answer If-None-Match from
		// the page, and Range with the whole page.
		return BypassConditional
	}
	return ""
}

// storable returns why a captured response must not be stored, or "" and
// the TTL to store it for. ended tells that the request's context ended
// while the handler ran.
func (r *Route[C]) storable(c C, req *http.Request, cw *captureWriter, rr *request, ended bool) (string, time.Duration) {
	m := r.Engine
	switch {
	case cw.hijacked:
		return BypassHijacked, 0
	case !cw.wroteHeader:
		return BypassNoResponse, 0
	case ended:
		return BypassContext, 0
	case cw.failed:
		return BypassWriteError, 0
	case rr.failed.Load(), cw.restatus:
		// An error handled inside the route, or a second status (a
		// recovering middleware's 500 after the handler had written).
		return BypassError, 0
	}
	if reason := r.refusal(req, cw, rr, true); reason != "" {
		return reason, 0
	}
	ttl := m.ttlOf(cw, rr)
	if ttl == 0 {
		return BypassTTL, 0
	}
	if m.cfg.Filter && !r.fe.Filter(c, cw.status, cw.Header()) {
		return BypassFilter, 0
	}
	return "", ttl
}

// refusal returns the first rule of a response's status, header and body
// that keeps it out of the store, or "". Before the body is known (whole
// false: the header is being written, for Cache-Status) it judges the
// body by the Content-Length the handler declared, if any.
func (r *Route[C]) refusal(req *http.Request, cw *captureWriter, rr *request, whole bool) string {
	m := r.Engine
	switch {
	case !slices.Contains(m.cfg.AllowedStatuses, cw.status):
		return BypassStatus
	case cw.setCookie:
		return BypassSetCookie
	case cw.varyStar:
		return BypassVary
	case cacheControlForbids(cw.cacheControl):
		return BypassCacheControl
	case whole && (cw.overflow || int64(len(cw.body)) > math.MaxUint32),
		!whole && declaredOver(cw.contentLength, m.cfg.MaxBodySize):
		return BypassTooLarge
	case whole && !lengthMatches(cw.contentLength, len(cw.body)):
		return BypassLength
	case cw.trailer || whole && hasTrailers(cw.Header()):
		return BypassTrailer
	case cw.eventStream:
		return BypassEventStream
	case otherSpelling(req.Header, m.vary, cw.vary):
		return BypassHeaderCase
	case rr.tagErr:
		return BypassTagError
	case !replayable(cw.captured):
		return BypassBadHeader
	}
	return ""
}

// declaredOver reports whether a Content-Length a handler declared is over
// max bytes.
func declaredOver(declared []string, max int64) bool {
	for _, v := range declared {
		if d, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && d > max {
			return true
		}
	}
	return false
}

// lengthMatches reports whether every Content-Length a handler declared is
// the length of the body it wrote. A shorter body is one net/http cuts the
// connection on; a longer one it refuses to send.
func lengthMatches(declared []string, n int) bool {
	for _, v := range declared {
		d, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || d != int64(n) {
			return false
		}
	}
	return true
}

// hasTrailers reports whether a response header holds trailer values set
// after the header was written (http.TrailerPrefix).
func hasTrailers(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// replayable reports whether every header would decode from an entry.
func replayable(h http.Header) bool {
	for k, vs := range h {
		if !validHeaderName([]byte(k)) {
			return false
		}
		for _, v := range vs {
			if !validHeaderValue([]byte(v)) {
				return false
			}
		}
	}
	return true
}

// ttlOf resolves a response's TTL: SetTTL, then Cache-Control when enabled,
// then the route's TTL, then the Cache's default. 0 means do not store.
func (m *Engine) ttlOf(cw *captureWriter, rr *request) time.Duration {
	if rr.ttlSet {
		if rr.ttl < 0 && rr.ttl != stores.NoExpiry {
			return 0 // a nonsensical TTL is not a reason to keep a page forever
		}
		return rr.ttl
	}
	if m.cfg.TTLFromCacheControl {
		if d, ok := cacheControlTTL(cw.cacheControl); ok {
			return d
		}
	}
	return m.cache.TTL(m.cfg.TTL)
}

// entryFor encodes the entry of a storable response and returns it with its
// variant key and store TTL.
func (r *Route[C]) entryFor(c C, req *http.Request, p missParams, cw *captureWriter, rr *request, ttl time.Duration) ([]byte, string, time.Duration) {
	m := r.Engine
	nonce := p.nonce
	if !p.hasNonce {
		nonce = rand.Uint64()
	}
	now := m.clock()
	fresh := int64(math.MaxInt64)
	storeTTL := stores.NoExpiry
	if ttl > 0 {
		fresh = addSat(now, int64(ttl))
		storeTTL = ttl + max(m.cfg.StaleWhileRevalidate, m.cfg.StaleIfError)
	}
	header := cw.captured
	if !hasHeader(header, headerETag) {
		// A strong validator of the stored body, computed once here and
		// never on a hit.
		sum := sha256.Sum256(cw.body)
		header[headerETag] = []string{`"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	}
	kb := keyBufPool.Get().(*keyBuf)
	defer keyBufPool.Put(kb)
	kb.b = r.appendVariant(kb.b[:0], c, req, p.pageKey, nonce, cw.vary)
	rec := encodeEntry(&entryData{
		nonce:      nonce,
		key:        kb.b,
		storedAt:   now,
		freshUntil: fresh,
		swrUntil:   addSat(fresh, int64(m.cfg.StaleWhileRevalidate)),
		sieUntil:   addSat(fresh, int64(m.cfg.StaleIfError)),
		status:     cw.status,
		vary:       cw.vary,
		tags:       rr.tags,
		header:     header,
		body:       cw.body,
	})
	return rec, string(kb.b), storeTTL
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// countMiss counts the lookup of a request that runs the handler as a
// miss, unless it holds a stale-if-error page: run counts that one once it
// knows whether the stale page replaced a failure.
func (m *Engine) countMiss(ctx context.Context, p missParams) {
	if p.stale == nil {
		m.cache.CountLookup(ctx, core.FeaturePage, core.ResultMiss, p.detail)
	}
}

// miss handles a request that found no usable page. (A separate function, so
// that the hit path's lookup stays on the stack.)
// e is the expired entry lookup found, if any.
func (r *Route[C]) miss(c C, req *http.Request, kb *keyBuf, pageKey string, lk *lookup, e *entry) error {
	m := r.Engine
	cc := m.cache
	ctx := req.Context()
	// What the miss holds until its page is written (or until it returns,
	// when it writes none): the cross-process lock.
	var ho handoff
	defer func() { m.release(ho.take()) }()
	var stale *entry
	if lk.state == lookError {
		// A copy: e may be lk.buf, on the caller's stack.
		stale = new(entry)
		*stale = *e
	}
	params := missParams{pageKey: pageKey, stale: stale, nonce: lk.nonce, hasNonce: lk.hasNonce, atPage: lk.atPage || !lk.hasNonce, pageVary: lk.vary, fwd: missFwd(lk), handoff: &ho}
	if lk.corrupt {
		params.detail = core.DetailCorrupt
	}
	if pass := m.requestRefusal(req); pass != "" {
		m.countMiss(ctx, params)
		cc.CountBypass(pass)
		params.noStore, params.pass = true, pass
		return r.run(c, req, params, nil)
	}

	// One miss per page and variant: the flight key holds the configured
	// vary headers and, once a response of the page told them, its Vary
	// headers.
	vary := lk.vary
	if vary == nil && e != nil {
		vary = e.varyNames()
	}
	moved := false
	for {
		kb.b = r.appendHostPart(append(kb.b[:0], pageKey...), c, req)
		kb.b = appendVaryValues(kb.b, req.Header, m.vary, vary)
		flightKey := string(kb.b)
		t, pub, err := m.st.flights.Join(ctx, flightKey, m.st.hooks.OnWait)
		if errors.Is(err, flight.ErrPass) {
			// The page's last answer could not be shared: run the
			// handler at once, neither waiting nor waited for, and
			// without the lock.
			m.countMiss(ctx, params)
			return r.run(c, req, params, nil)
		}
		if err != nil {
			return err
		}
		if t == nil {
			// The runner's own encoding, handed over in-process.
			if e, err := decodeEntry(pub.entry, false); err == nil && r.matches(c, req, kb, pageKey, &e) {
				// A miss served by the page another request computed.
				cc.CountLookup(ctx, core.FeaturePage, core.ResultMiss, params.detail)
				cc.CountCoalesced(core.FeaturePage)
				return m.serve(req, ifNoneMatch(req.Header), r.fe.Writer(c), &e, StatusHit, m.cs.collapsed(params.fwd), m.clock())
			}
			if !moved && !slices.Equal(pub.vary, vary) {
				// Another variant, whose Vary names are now known:
				// wait with the requests of this one.
				vary, moved = pub.vary, true
				continue
			}
			m.countMiss(ctx, params)
			return r.run(c, req, params, nil)
		}
		defer t.End()
		t.PassFor(m.passFor())
		if moved {
			// The runner of this variant may have stored it and left
			// before this request joined.
			var again lookup
			if served, err := r.serveFresh(c, req, kb, pageKey, &again, t); served {
				return err
			}
			if again.hasNonce {
				// Store this variant beside the others of the page.
				params.nonce, params.hasNonce = again.nonce, true
				params.atPage, params.pageVary = again.atPage, again.vary
			} else {
				params.atPage = true // the page key holds nothing now
			}
		}

		if m.cfg.LockTimeout > 0 {
			release, acquired := cc.Lock(ctx, flightKey, m.cfg.LockTimeout)
			if acquired {
				ho.add(release)
				params.passLock = func() { cc.MarkPass(ctx, flightKey, m.passFor()) }
			} else if done, err := r.awaitOther(c, req, kb, pageKey, flightKey, t); done {
				return err
			}
		}
		m.countMiss(ctx, params)
		return r.run(c, req, params, t)
	}
}

// maxPass is the longest a page whose answer could not be shared is
// passed: its concurrent misses neither wait for one another nor take the
// lock (Varnish's hit-for-pass).
const maxPass = 5 * time.Second

// passFor returns how long a page whose answer could not be shared is
// passed: the route's TTL, at most maxPass.
func (m *Engine) passFor() time.Duration {
	ttl := m.cache.TTL(m.cfg.TTL)
	if ttl <= 0 || ttl > maxPass {
		return maxPass
	}
	return ttl
}
