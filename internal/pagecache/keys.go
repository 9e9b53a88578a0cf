package pagecache

import (
	"encoding/binary"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/echocache/echocache/internal/keyspace"
)

// Cached pages live under two kinds of keys, both in the "r:" namespace:
//
//   - the page key, built from the request without its host: the escaped
//     path (or KeyPrefix, or KeyFunc) and the canonical query. It holds the
//     entry most recently stored for the page; the entry carries the page's
//     nonce (a random per-page version) and the names of the response's Vary
//     headers.
//   - the variant key: page key + nonce + scheme and host + the values of
//     the configured vary headers and of the response's Vary headers.
//
// A stored page costs one write of one key, with one copy of its body. The
// first variant of a page (and every page without Vary, the common case)
// is stored under the page key alone, and found with a single Get; the
// other variants are stored under their variant keys alone, found with a
// second Get after the page record gave the nonce and the Vary names. A
// variant whose Vary names are not the page record's replaces the page
// record (it is the newest word on what the page varies on). Entries
// written when every page was stored under both keys read the same way.
//
// Every entry records its full variant key, and a lookup compares it with
// the key the request builds, byte for byte. A store that hashes long keys
// can therefore never serve one page for another.
//
// Deleting the page key (DeletePage) drops every variant at once: the next
// store of the page picks a new nonce, so the old variant keys are never
// looked up again and simply expire.

// keying is the part of a route config that derives keys. DeletePage uses
// the keyings of every route built on a Cache.
type keying struct {
	prefix    string      // KeyPrefix; "" for the default
	ignore    *ignoreList // query parameters to leave out
	dropQuery bool
	custom    bool // KeyFunc: the key does not derive from the URL
}

func (k *keying) id() string {
	return k.prefix + "\x00" + strings.Join(k.ignore.globs, "\x00") + "\x00" + strconv.FormatBool(k.dropQuery) + strconv.FormatBool(k.custom)
}

// appendPageKey appends the page key of a request to dst. escPath is the
// request's escaped path, rawQuery its raw query.
func (k *keying) appendPageKey(dst []byte, escPath, rawQuery string) []byte {
	dst = append(dst, keyspace.Route...)
	if k.prefix == "" {
		dst = append(dst, keyspace.RoutePath)
		dst = append(dst, escPath...)
	} else {
		expanded := strings.ReplaceAll(k.prefix, "%s", escPath)
		dst = append(dst, keyspace.RoutePrefix)
		dst = strconv.AppendInt(dst, int64(len(expanded)), 10)
		dst = append(dst, ':')
		dst = append(dst, expanded...)
	}
	dst = append(dst, '?')
	if !k.dropQuery {
		dst = appendCanonicalQuery(dst, rawQuery, k.ignore)
	}
	return dst
}

// appendCustomPageKey appends the page key for a KeyFunc's result.
func appendCustomPageKey(dst []byte, key string) []byte {
	dst = append(dst, keyspace.Route...)
	dst = append(dst, keyspace.RouteFunc)
	return append(dst, key...)
}

// queryPair is one decoded query parameter.
type queryPair struct {
	k, v string
	raw  bool // k and v are as sent: they did not decode
}

var queryPairsPool = sync.Pool{New: func() any { s := make([]queryPair, 0, 16); return &s }}

// appendCanonicalQuery appends raw in canonical form: parameters decoded,
// those matching an ignore glob left out, sorted by name (the order of the
// values of one name is kept, since it can matter), and re-encoded, so that
// ?b=2&a=1 and ?a=%31&b=2 give the same key. A parameter that does not
// decode is kept as it was written, marked so that it can never equal a
// decoded one.
func appendCanonicalQuery(dst []byte, raw string, ignore *ignoreList) []byte {
	if raw == "" {
		return dst
	}
	if alreadyCanonical(raw, ignore) {
		return append(dst, raw...)
	}
	return appendDecodedQuery(dst, raw, ignore)
}

// appendDecodedQuery is appendCanonicalQuery's general case.
func appendDecodedQuery(dst []byte, raw string, ignore *ignoreList) []byte {
	pp := queryPairsPool.Get().(*[]queryPair)
	pairs := (*pp)[:0]
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		rk, rv, _ := strings.Cut(part, "=")
		k, kerr := url.QueryUnescape(rk)
		v, verr := url.QueryUnescape(rv)
		if kerr != nil || verr != nil {
			// Kept as sent, marked with "%!", which never starts
			// QueryEscape's output ('!' is no hex digit), so a raw pair
			// cannot be spelled by a decoded one.
			pairs = append(pairs, queryPair{k: rk, v: rv, raw: true})
			continue
		}
		if ignore.match(k) {
			continue
		}
		pairs = append(pairs, queryPair{k: k, v: v})
	}
	slices.SortStableFunc(pairs, func(a, b queryPair) int { return strings.Compare(a.k, b.k) })
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		if p.raw {
			dst = append(dst, "%!"...)
			dst = append(dst, p.k...)
			dst = append(dst, "=%!"...)
			dst = append(dst, p.v...)
			continue
		}
		dst = append(dst, url.QueryEscape(p.k)...)
		dst = append(dst, '=')
		dst = append(dst, url.QueryEscape(p.v)...)
	}
	clear(pairs)
	*pp = pairs[:0]
	queryPairsPool.Put(pp)
	return dst
}

// alreadyCanonical reports whether raw is its own canonical form, which is
// the common case on a hit and spares decoding and re-encoding it: every
// byte is one QueryEscape leaves alone (or a separator), every parameter
// has a name and an '=', the names are sorted, and none is ignored.
func alreadyCanonical(raw string, ignore *ignoreList) bool {
	if strings.HasSuffix(raw, "&") {
		return false // an empty last parameter, which the slow path drops
	}
	prev := ""
	for len(raw) > 0 {
		part, rest, _ := strings.Cut(raw, "&")
		raw = rest
		name, _, hasEq := strings.Cut(part, "=")
		if name == "" || !hasEq || name < prev || ignore.match(name) {
			return false
		}
		for i := 0; i < len(part); i++ {
			b := part[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
				b == '-' || b == '_' || b == '.' || b == '~' || b == '=' && i == len(name)) {
				return false
			}
		}
		prev = name
	}
	return true
}

// ignoreList is RouteConfig.IgnoreQueryParams made ready for matching once,
// at construction: the usual globs, a plain name or a "prefix*", are
// matched without path.Match (with its semantics: '*' stops at '/').
type ignoreList struct {
	globs    []string // as configured
	exact    []string
	prefixes []string
	patterns []string // anything else, for path.Match
}

func compileIgnore(globs []string) *ignoreList {
	l := &ignoreList{globs: slices.Clone(globs)}
	const meta = `*?[\`
	for _, g := range globs {
		switch star := len(g) - 1; {
		case !strings.ContainsAny(g, meta):
			l.exact = append(l.exact, g)
		case g[star] == '*' && !strings.ContainsAny(g[:star], meta):
			l.prefixes = append(l.prefixes, g[:star])
		default:
			l.patterns = append(l.patterns, g)
		}
	}
	return l
}

// defaultIgnore is DefaultIgnoreQueryParams compiled.
var defaultIgnore = compileIgnore(DefaultIgnoreQueryParams)

// match reports whether a query parameter name is ignored.
func (l *ignoreList) match(name string) bool {
	if l == nil {
		return false
	}
	if slices.Contains(l.exact, name) {
		return true
	}
	for _, p := range l.prefixes {
		if strings.HasPrefix(name, p) && strings.IndexByte(name[len(p):], '/') < 0 {
			return true
		}
	}
	for _, g := range l.patterns {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Forwarded reports whether a request carries a header that a framework
// may read its scheme from (X-Forwarded-Proto, X-Forwarded-Protocol,
// X-Forwarded-Ssl, X-Url-Scheme). Without one, and without TLS, the scheme
// is http: the front ends ask their framework only when it could say
// otherwise, which spares Echo's Scheme (an IP parse of the peer) on most
// requests.
func Forwarded(h http.Header) bool {
	return len(h["X-Forwarded-Proto"]) > 0 || len(h["X-Forwarded-Protocol"]) > 0 ||
		len(h["X-Forwarded-Ssl"]) > 0 || len(h["X-Url-Scheme"]) > 0
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}

// appendVaryValue appends one request header named by a vary list, read
// in every spelling (headerValues): a request whose middleware set
// h["accept-language"] selects the variant its handler would render. An
// absent header and an empty one give different keys.
func appendVaryValue(dst []byte, h http.Header, name string) []byte {
	dst = append(dst, 0)
	dst = append(dst, name...)
	vs, ok := headerValues(h, name)
	if !ok {
		return append(dst, '!')
	}
	n := len(vs) - 1
	for _, v := range vs {
		n += len(v)
	}
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ':')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, '\n') // never inside a header value
		}
		dst = append(dst, v...)
	}
	return dst
}

// appendNonce appends the page nonce part of a variant key: a zero byte and
// the nonce's 8 bytes, big-endian.
func appendNonce(dst []byte, nonce uint64) []byte {
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, nonce)
}

// canonicalNames canonicalises, sorts and de-duplicates header names.
func canonicalNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		out = append(out, textproto.CanonicalMIMEHeaderKey(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// responseVary returns the header names of a response's Vary header
// values, canonical and sorted, and whether one of them is "*".
func responseVary(vs []string) (names []string, star bool) {
	if len(vs) == 0 {
		return nil, false
	}
	for _, v := range vs {
		for n := range strings.SplitSeq(v, ",") {
			n = strings.TrimSpace(n)
			if n == "*" {
				return nil, true
			}
			if n != "" {
				names = append(names, n)
			}
		}
	}
	return canonicalNames(names), false
}

// appendVaryValues appends the request headers named by two sorted,
// de-duplicated name lists (configured and response vary names), in merged
// order and each name once, without allocating.
func appendVaryValues(dst []byte, h http.Header, a, b []string) []byte {
	for len(a) > 0 || len(b) > 0 {
		var n string
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			n, a = a[0], a[1:]
		case len(a) == 0 || b[0] < a[0]:
			n, b = b[0], b[1:]
		default: // equal
			n, a, b = a[0], a[1:], b[1:]
		}
		dst = appendVaryValue(dst, h, n)
	}
	return dst
}

// withoutIgnored returns req as the handler of a miss or a refresh sees it:
// without the query parameters the page key ignores (IgnoreQueryParams),
// removed from URL.RawQuery and RequestURI, the others kept as written and
// in their order, so that the page stored is what a request without them
// would get. It returns req itself when the key ignores nothing of its
// query (also for KeyFunc and DropQuery routes, whose keys do not follow
// the query). The copy shares req's context and header; its Form is
// reset so that a form parsed before from the full query is parsed again.
func (k *keying) withoutIgnored(req *http.Request) *http.Request {
	if k.custom || k.dropQuery || req.URL == nil || req.URL.RawQuery == "" {
		return req
	}
	raw, ok := stripIgnored(req.URL.RawQuery, k.ignore)
	if !ok {
		return req
	}
	r2 := new(http.Request)
	*r2 = *req
	u := *req.URL
	u.RawQuery = raw
	r2.URL = &u
	if i := strings.IndexByte(req.RequestURI, '?'); i >= 0 {
		r2.RequestURI = req.RequestURI[:i]
		if raw != "" {
			r2.RequestURI += "?" + raw
		}
	}
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
	return r2
}

// stripIgnored returns raw without its parameters whose (decoded) names
// ignore matches, and whether it left any out.
func stripIgnored(raw string, ignore *ignoreList) (string, bool) {
	if ignore == nil || len(ignore.globs) == 0 {
		return raw, false
	}
	var b strings.Builder
	dropped := false
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil && name != "" && ignore.match(n) {
			dropped = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	if !dropped {
		return raw, false
	}
	return b.String(), true
}

// NarrowQuery makes q, the parsed query an Echo context keeps for its
// request (Echo v4 and v5 parse it once per request and keep it across
// SetRequest), agree with r, the request without ignored parameters a
// handler is run with (withoutIgnored): it removes from q the names r's
// query lacks, and returns the function that puts them back. A front end
// calls it only when r's raw query differs from that of the context's
// request.
func NarrowQuery(q url.Values, r *http.Request) (restore func()) {
	keep := r.URL.Query()
	var removed url.Values
	for name, vs := range q {
		if _, ok := keep[name]; !ok {
			if removed == nil {
				removed = url.Values{}
			}
			removed[name] = vs
			delete(q, name)
		}
	}
	return func() {
		for name, vs := range removed {
			q[name] = vs
		}
	}
}
