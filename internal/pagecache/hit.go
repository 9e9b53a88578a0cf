package pagecache

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

// The hit path: finding a page in the store and serving it.

// lookup reads the page record and, when the request is another variant,
// the variant record. It returns the entry it found (lk.buf, or an entry
// kept in the store's memo), or nil; lk.state says whether it is usable.
// ctx carries the request's store budget (Handle).
func (r *Route[C]) lookup(lk *lookup, ctx context.Context, c C, req *http.Request, kb *keyBuf, viewer inproc.ViewFunc, pageKey string, now int64) *entry {
	m := r.Engine
	raw, memo, err := m.view(ctx, viewer, pageKey)
	if err != nil {
		if !errors.Is(err, stores.ErrNotFound) {
			lk.state, lk.err = lookFailed, err
		}
		return nil
	}
	e, err := decodeViewed(&lk.buf, raw, memo, viewer == nil)
	if err != nil {
		m.dropCorrupt(ctx, lk, pageKey, err)
		return nil
	}
	// Without a viewer, only a networked store's copy in the process
	// comes with a memo (core.Cache.View).
	lk.local = viewer == nil && memo != nil
	lk.nonce, lk.hasNonce = e.nonce, true
	lk.atPage = true
	if !r.matches(c, req, kb, pageKey, e) {
		lk.atPage = false
		lk.otherURI = r.otherURI(c, req, pageKey, e)
		lk.vary = e.varyNames()
		kb.b = r.appendVariant(kb.b[:0], c, req, pageKey, e.nonce, lk.vary)
		variantKey := string(kb.b)
		raw, memo, err = m.view(ctx, viewer, variantKey)
		if err != nil {
			if !errors.Is(err, stores.ErrNotFound) {
				lk.state, lk.err = lookFailed, err
			}
			return nil
		}
		if e, err = decodeViewed(&lk.buf, raw, memo, viewer == nil); err != nil {
			m.dropCorrupt(ctx, lk, variantKey, err)
			return nil
		}
		lk.local = viewer == nil && memo != nil
		if !r.matches(c, req, kb, pageKey, e) {
			return nil // another request's entry (a store's hash collision)
		}
	}
	switch {
	case now < e.freshUntil:
		lk.state = lookFresh
	case now < e.swrUntil:
		lk.state = lookStale
	case now < e.sieUntil:
		lk.state = lookError
	default:
		lk.expired = true
		return nil
	}
	if e.nTags > 0 {
		ok, err := tagsCurrent(ctx, m.cache, e)
		if err != nil {
			lk.state, lk.err = lookFailed, err
		} else if !ok {
			lk.state, lk.expired = lookMiss, true
		}
	}
	return e
}

// matches reports whether e was stored under the variant key the request
// has for e's page nonce and Vary names. When vary headers are involved it
// builds that key in kb (where the caller finds it); otherwise it compares
// the parts in place, which is the common hit path.
func (r *Route[C]) matches(c C, req *http.Request, kb *keyBuf, pageKey string, e *entry) bool {
	m := r.Engine
	if len(m.vary) > 0 || e.nVary > 0 {
		kb.b = r.appendVariant(kb.b[:0], c, req, pageKey, e.nonce, e.varyNames())
		return string(kb.b) == string(e.key)
	}
	// The same layout as appendVariant: page key, nonce, host part.
	k := e.key
	if len(k) < len(pageKey)+10 || string(k[:len(pageKey)]) != pageKey {
		return false
	}
	k = k[len(pageKey):]
	if k[0] != 0 || binary.BigEndian.Uint64(k[1:]) != e.nonce || k[9] != 0 {
		return false
	}
	k = k[10:]
	if m.keying.custom {
		return len(k) == 0
	}
	sch, host := r.fe.Scheme(c, req), req.Host
	if len(k) != len(sch)+3+len(host) || !equalLower(k[:len(sch)], sch) || string(k[len(sch):len(sch)+3]) != "://" {
		return false
	}
	k = k[len(sch)+3:]
	return string(k) == host || equalLower(k, host)
}

// equalLower reports whether lower is s lower-cased (ASCII).
func equalLower(lower []byte, s string) bool {
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if lower[i] != c {
			return false
		}
	}
	return true
}

// appendVariant appends the variant key of the request for a page nonce
// and the Vary names of its response (see keys.go).
func (r *Route[C]) appendVariant(dst []byte, c C, req *http.Request, pageKey string, nonce uint64, respVary []string) []byte {
	dst = append(dst, pageKey...)
	dst = appendNonce(dst, nonce)
	dst = r.appendHostPart(dst, c, req)
	return appendVaryValues(dst, req.Header, r.vary, respVary)
}

// appendHostPart appends the scheme and host of a request, lower-cased;
// pages keyed by a key function leave them out.
func (r *Route[C]) appendHostPart(dst []byte, c C, req *http.Request) []byte {
	dst = append(dst, 0)
	if r.keying.custom {
		return dst
	}
	dst = appendLower(dst, r.fe.Scheme(c, req))
	dst = append(dst, "://"...)
	return appendLower(dst, req.Host)
}

// view reads the record under key: from a background write under way (see
// write.go), or else from the store.
func (m *Engine) view(ctx context.Context, viewer inproc.ViewFunc, key string) ([]byte, *inproc.Memo, error) {
	if rec := m.st.writes.page(key); rec != nil {
		return rec, nil, nil
	}
	return m.cache.View(ctx, viewer, key)
}

// dropCorrupt drops the record under key, which did not decode (err): it
// is logged, counted and deleted (core.Cache.DropCorrupt), and the lookup
// is a miss that says so (DetailCorrupt in its Cache-Status member and
// its lookup event).
func (m *Engine) dropCorrupt(ctx context.Context, lk *lookup, key string, err error) {
	lk.corrupt = true
	m.cache.DropCorrupt(ctx, "page entry", key, err)
}

// awaitOther waits, after another process took the page's lock
// (flightKey's), for the page to appear in the store, until LockTimeout.
// It stops waiting as soon as the lock is released without the page
// (the other process did not store its answer) or marked pass (MarkPass:
// its answer could not be shared), and the request then runs the
// handler itself. done reports whether the request was answered (from the
// store, or with ctx's error).
func (r *Route[C]) awaitOther(c C, req *http.Request, kb *keyBuf, pageKey, flightKey string, t *flight.Turn[pageFlight]) (done bool, err error) {
	m := r.Engine
	ctx := req.Context()
	if m.st.hooks.OnWait != nil {
		m.st.hooks.OnWait()
	}
	served := false
	core.PollStore(ctx, m.cfg.LockTimeout, func() bool {
		// The lock first: the page is written before the lock goes, so
		// a lock found gone means the lookup that follows sees the page
		// if there is one.
		held, _, lerr := m.cache.LockState(ctx, flightKey)
		var lk lookup
		served, err = r.serveFresh(c, req, kb, pageKey, &lk, t)
		// failed: the store cannot tell, run the handler
		return served || lk.state == lookFailed || lerr != nil || !held
	})
	if served {
		return true, err
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	return false, nil
}

// serveFresh looks the page up and, when it is fresh, serves it as a hit
// and publishes it to t's flight.
func (r *Route[C]) serveFresh(c C, req *http.Request, kb *keyBuf, pageKey string, lk *lookup, t *flight.Turn[pageFlight]) (bool, error) {
	now := r.clock()
	e := r.lookup(lk, req.Context(), c, req, kb, r.cache.Viewer(), pageKey, now)
	if lk.state != lookFresh {
		return false, nil
	}
	r.cache.CountLookup(req.Context(), core.FeaturePage, core.ResultHit, "")
	t.Share(pageFlight{entry: e.raw, vary: e.varyNames()})
	return true, r.serve(req, ifNoneMatch(req.Header), r.fe.Writer(c), e, StatusHit, r.cs.hit(e, now, lk.local), now)
}

// serve writes a cached entry to w: its status, headers and body (none for
// HEAD, 304 for a matching If-None-Match: inm, the request's values in any
// spelling), plus the status header, Age and the Cache-Status member (none
// when it is "").
func (m *Engine) serve(req *http.Request, inm []string, w http.ResponseWriter, e *entry, status, member string, now int64) error {
	h := w.Header()
	notModified := false
	if len(inm) > 0 && e.status >= 200 && e.status < 300 {
		etag := e.etag()
		notModified = etag != "" && etagMatch(inm, etag)
	}

	// One allocation holds every header value: the status header's, Age's,
	// Cache-Status's, the entry's and Content-Length's.
	declare := !notModified && declareLength(req.Method, e.status, len(e.body)) && len(h["Content-Length"]) == 0
	n := 3 + e.nVals
	if declare {
		n++
	}
	vals := make([]string, n)
	if notModified {
		e.applyHeaders(h, vals[3:], keepOn304)
	} else {
		e.applyHeaders(h, vals[3:], nil)
	}
	if m.statusHeader != "" {
		vals[0] = status
		h[m.statusHeader] = vals[0:1:1]
	}
	if member != "" {
		if len(h[headerCacheStatus]) > 0 {
			addMember(h, member) // after the members stored with the page
		} else {
			vals[2] = member
			h[headerCacheStatus] = vals[2:3:3]
		}
	}
	age := max((now-e.storedAt)/int64(time.Second), 0)
	vals[1] = strconv.FormatInt(age, 10)
	h["Age"] = vals[1:2:2]

	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if declare {
		vals[n-1] = strconv.Itoa(len(e.body))
		h["Content-Length"] = vals[n-1 : n : n]
	}
	w.WriteHeader(e.status)
	if req.Method != http.MethodHead && len(e.body) > 0 {
		if _, err := w.Write(e.body); err != nil {
			return err
		}
	}
	return nil
}

// chunkedOver is the body size above which net/http sends a response
// whose length is not declared with chunked transfer coding (its
// bufferBeforeChunkingSize): below it, net/http buffers the body and
// declares the length itself.
const chunkedOver = 2048

// declareLength reports whether a hit declares its Content-Length: for
// HEAD, where no body follows for net/http to count, and for a body too
// large for net/http to buffer, which would otherwise go chunked (more
// bytes and a write more per response, and a client that cannot tell the
// size). Never for a status that has no content (RFC 9110 §8.6: 1xx, 204;
// 304 is answered before this).
func declareLength(method string, status, n int) bool {
	if status < 200 || status == http.StatusNoContent || status == http.StatusNotModified {
		return false
	}
	return method == http.MethodHead || n > chunkedOver
}

// keepOn304 selects the headers a 304 carries (RFC 9110, 15.4.5).
func keepOn304(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified":
		return true
	}
	return false
}

// etagMatch reports whether an If-None-Match header matches etag, with the
// weak comparison RFC 9110 prescribes for If-None-Match.
func etagMatch(ifNoneMatch []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range ifNoneMatch {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
