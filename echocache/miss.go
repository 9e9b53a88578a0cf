package echocache

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

	"github.com/labstack/echo/v4"

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
	noStore  bool // run and pass through only (HEAD)
	refresh  bool // background refresh: errors are logged
}

// routeRequest is the per-request state SetTTL and Tag reach through the
// echo.Context. Nested route middleware chain theirs through parent.
type routeRequest struct {
	cache  *Cache
	ctx    context.Context
	parent *routeRequest

	ttl    time.Duration
	ttlSet bool
	tags   []tagVersion
	tagErr bool
}

const routeRequestKey = "echocache.routeRequest"

// SetTTL sets how long the response being built is cached, overriding the
// route's TTL (Flask-Caching's CachedResponse). A ttl of 0 (or any negative
// ttl but stores.NoExpiry) means the response is not stored;
// stores.NoExpiry keeps it until deleted. Outside
// cached routes it does nothing.
func SetTTL(c echo.Context, ttl time.Duration) {
	rr, _ := c.Get(routeRequestKey).(*routeRequest)
	for ; rr != nil; rr = rr.parent {
		rr.ttl, rr.ttlSet = ttl, true
	}
}

// Tag attaches tags to the response being built, so that InvalidateTag
// drops it. Tag reads each tag's current version right away: call it
// before reading the data the response is built from, so that an
// invalidation that happens while the response is being built is not lost.
// Outside cached routes it does nothing. If the versions cannot be read
// (store error), the response is not stored.
func Tag(c echo.Context, tags ...string) {
	rr, _ := c.Get(routeRequestKey).(*routeRequest)
	for ; rr != nil; rr = rr.parent {
		tv, err := rr.cache.tagVersions(rr.ctx, tags)
		if err != nil {
			rr.tagErr = true
			continue
		}
		rr.tags = append(rr.tags, tv...)
	}
}

// run runs the handler for a miss, streams its response to the client while
// capturing it, and stores it when every rule allows. t, when not nil, is
// the turn in a flight the outcome is reported to.
func (m *routeMW) run(ec echo.Context, next echo.HandlerFunc, p missParams, t *flight.Turn[pageFlight]) error {
	c := m.cache
	res := ec.Response()
	h := res.Header()
	if m.statusHeader != "" && !p.refresh {
		h.Set(m.statusHeader, StatusMiss)
	}
	if p.noStore && p.stale == nil {
		return next(ec)
	}
	before := h.Clone()
	ctx := ec.Request().Context()
	parent, _ := ec.Get(routeRequestKey).(*routeRequest)
	rr := &routeRequest{cache: c, ctx: ctx, parent: parent}
	ec.Set(routeRequestKey, rr)
	orig := res.Writer
	cw := &captureWriter{
		ResponseWriter: orig,
		before:         before,
		max:            m.cfg.MaxBodySize,
		hold:           p.stale != nil,
		statusHeader:   m.statusHeader,
	}
	res.Writer = cw
	finished := false
	defer func() {
		res.Writer = orig
		ec.Set(routeRequestKey, parent)
		if !finished {
			c.countBypass(BypassPanic) // the panic goes on up the chain
		}
	}()
	err := next(ec)
	finished = true
	ended := contextEnded(ctx, ec.Request().Context())

	if p.stale != nil && (cw.held || err != nil && !cw.wroteHeader && isFailure(err)) {
		// stale-if-error: the client gets the stale page, not the failure.
		c.core().Counters().Stale.Add(1)
		res.Writer = orig
		resetHeader(h, before)
		var w headerWriter = res
		if res.Committed {
			// The held 5xx committed the echo.Response but reached nobody.
			w = orig
			res.Status, res.Size = p.stale.status, int64(len(p.stale.body))
		}
		return m.serve(ec, p.stale, StatusStale, m.clock(), w)
	}
	if cw.held {
		cw.release()
	}
	if err != nil {
		c.countBypass(BypassError)
		if t != nil && !isFailure(err) {
			t.Answered() // a 404, say, is the request's answer
		}
		if p.refresh {
			c.core().Logf("background refresh of %s: %v", ec.Request().URL, err)
		}
		return err
	}
	if p.noStore {
		return nil
	}
	reason, ttl := m.storable(ec, cw, rr, ended)
	if reason != "" {
		c.countBypass(reason)
		if t != nil && wholeAnswer(reason, cw.status) {
			t.Answered()
		}
		return nil
	}
	rec, variantKey, ttl := m.entryFor(ec, p, cw, rr, ttl)
	if t != nil {
		t.Share(pageFlight{entry: rec, vary: cw.vary})
	}
	// The page record and the variant record are the same bytes; see keys.go.
	items := map[string][]byte{p.pageKey: rec, variantKey: rec}
	if err := c.core().SetMany(context.WithoutCancel(ctx), items, ttl); err == nil {
		c.core().Counters().Stores.Add(1)
	}
	return nil
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
func wholeAnswer(reason BypassReason, status int) bool {
	switch reason {
	case BypassNoResponse, BypassContext, BypassWriteError, BypassLength, BypassTagError:
		return false
	case BypassStatus:
		return status < 500
	}
	return true
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

// storable returns why a captured response must not be stored, or "" and
// the TTL to store it for. ended tells that the request's context ended
// while the handler ran.
func (m *routeMW) storable(ec echo.Context, cw *captureWriter, rr *routeRequest, ended bool) (BypassReason, time.Duration) {
	switch {
	case cw.hijacked:
		return BypassHijacked, 0
	case !cw.wroteHeader:
		return BypassNoResponse, 0
	case ended:
		return BypassContext, 0
	case cw.failed:
		return BypassWriteError, 0
	case !slices.Contains(m.cfg.AllowedStatuses, cw.status):
		return BypassStatus, 0
	case cw.setCookie:
		return BypassSetCookie, 0
	case cw.varyStar:
		return BypassVary, 0
	case cacheControlForbids(cw.cacheControl):
		return BypassCacheControl, 0
	case cw.overflow || int64(len(cw.body)) > math.MaxUint32:
		return BypassTooLarge, 0
	case !lengthMatches(cw.contentLength, len(cw.body)):
		return BypassLength, 0
	case cw.trailer || hasTrailers(ec.Response().Header()):
		return BypassTrailer, 0
	case otherSpelling(ec.Request().Header, m.vary, cw.vary):
		return BypassHeaderCase, 0
	case rr.tagErr:
		return BypassTagError, 0
	case !replayable(cw.captured):
		return BypassBadHeader, 0
	}
	ttl := m.ttlOf(cw, rr)
	if ttl == 0 {
		return BypassTTL, 0
	}
	if m.cfg.ResponseFilter != nil && !m.cfg.ResponseFilter(ec, cw.status, ec.Response().Header()) {
		return BypassFilter, 0
	}
	return "", ttl
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
func (m *routeMW) ttlOf(cw *captureWriter, rr *routeRequest) time.Duration {
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
	return m.cache.core().TTL(m.cfg.TTL)
}

// entryFor encodes the entry of a storable response and returns it with its
// variant key and store TTL.
func (m *routeMW) entryFor(ec echo.Context, p missParams, cw *captureWriter, rr *routeRequest, ttl time.Duration) ([]byte, string, time.Duration) {
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
	kb.b = m.appendVariant(kb.b[:0], ec, p.pageKey, nonce, cw.vary)
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

// cacheControlForbids reports no-store, private or no-cache.
func cacheControlForbids(values []string) bool {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "private", "no-cache":
				return true
			}
		}
	}
	return false
}

// cacheControlTTL returns s-maxage, or else max-age, of a Cache-Control.
func cacheControlTTL(values []string) (time.Duration, bool) {
	maxAge, sMaxAge := -1, -1
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "s-maxage":
				sMaxAge = n
			case "max-age":
				maxAge = n
			}
		}
	}
	// A lifetime past what a Duration holds (290 years) is clamped, never
	// allowed to wrap into a negative or tiny one.
	const maxSeconds = math.MaxInt64 / int64(time.Second)
	switch {
	case sMaxAge >= 0:
		return time.Duration(min(int64(sMaxAge), maxSeconds)) * time.Second, true
	case maxAge >= 0:
		return time.Duration(min(int64(maxAge), maxSeconds)) * time.Second, true
	}
	return 0, false
}

// miss handles a request that found no usable page. (A separate function, so
// that the hit path's lookup stays on the stack.)
// e is the expired entry lookup found, if any.
func (m *routeMW) miss(ec echo.Context, next echo.HandlerFunc, kb *keyBuf, pageKey string, lk *lookup, e *entry) error {
	c := m.cache
	req := ec.Request()
	ctx := req.Context()
	var stale *entry
	if lk.state == lookError {
		// A copy: e may be lk.buf, on the caller's stack.
		stale = new(entry)
		*stale = *e
	}
	if !m.cfg.AllowAuthorization && hasHeader(req.Header, echo.HeaderAuthorization) {
		// Authorization under a non-canonical name: a response to it is
		// never stored, nor shared with other misses.
		c.countBypass(BypassAuthorization)
		return next(ec)
	}
	params := missParams{pageKey: pageKey, stale: stale, nonce: lk.nonce, hasNonce: lk.hasNonce}
	var pass BypassReason
	switch {
	case req.Method == http.MethodHead:
		// A HEAD response has no body to store, and a handler may answer
		// HEAD differently; only GET fills the cache.
		pass = BypassHead
	case isConditional(req.Header):
		// Its answer (206, 304, or a 200 chosen by the condition) is not
		// the page a plain request gets. Hits answer If-None-Match from
		// the page, and Range with the whole page.
		pass = BypassConditional
	}
	if pass != "" {
		c.core().Counters().Misses.Add(1)
		c.countBypass(pass)
		params.noStore = true
		return m.run(ec, next, params, nil)
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
		kb.b = appendHostPart(append(kb.b[:0], pageKey...), ec, m.keying.custom)
		kb.b = appendVaryValues(kb.b, req.Header, m.vary, vary)
		flightKey := string(kb.b)
		t, pub, err := m.st.flights.Join(ctx, flightKey, m.st.onWait)
		if err != nil {
			return err
		}
		if t == nil {
			// The runner's own encoding, handed over in-process.
			if e, err := decodeEntry(pub.entry, false); err == nil && m.matches(ec, kb, pageKey, &e) {
				c.core().Counters().Hits.Add(1)
				return m.serve(ec, &e, StatusHit, m.clock(), ec.Response())
			}
			if !moved && !slices.Equal(pub.vary, vary) {
				// Another variant, whose Vary names are now known:
				// wait with the requests of this one.
				vary, moved = pub.vary, true
				continue
			}
			c.core().Counters().Misses.Add(1)
			return m.run(ec, next, params, nil)
		}
		defer t.End()
		if moved {
			// The runner of this variant may have stored it and left
			// before this request joined.
			var again lookup
			if served, err := m.serveFresh(ec, kb, pageKey, &again, t); served {
				return err
			}
			if again.hasNonce {
				// Store this variant beside the others of the page.
				params.nonce, params.hasNonce = again.nonce, true
			}
		}

		if m.cfg.LockTimeout > 0 {
			release, acquired := c.core().Lock(ctx, flightKey, m.cfg.LockTimeout)
			if acquired {
				defer release()
			} else if done, err := m.awaitOther(ec, kb, pageKey, t); done {
				return err
			}
		}
		c.core().Counters().Misses.Add(1)
		return m.run(ec, next, params, t)
	}
}
