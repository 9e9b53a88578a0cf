package pagecache

import (
	"net/http"
	"strings"
)

// Header names in any case. net/http canonicalises the names it parses,
// but code may assign a header map directly (h["cache-control"] = ...),
// and net/http sends such a response header as it is. Every rule that
// decides whether a response is stored reads names in any case, or a
// response that says private, or one made for a request with credentials,
// would be shared. The hit path reads request headers by their canonical
// names, one map lookup each, as Header.Get does; a request that carries
// one of them under another spelling may be answered from a stored page
// (the one its canonical headers select), but its own response is never
// stored.

// hasHeader reports whether h holds a non-empty header name (canonical) in
// any spelling.
func hasHeader(h http.Header, name string) bool {
	if len(h[name]) > 0 {
		return true
	}
	for k, vs := range h {
		if len(k) == len(name) && len(vs) > 0 && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// otherSpelling reports whether h holds a header named in one of the
// lists (canonical names) under a spelling other than the canonical one,
// which keys, made of canonical names, do not see.
func otherSpelling(h http.Header, lists ...[]string) bool {
	for k := range h {
		for _, names := range lists {
			for _, name := range names {
				if len(k) == len(name) && k != name && strings.EqualFold(k, name) {
					return true
				}
			}
		}
	}
	return false
}

// conditionalHeaders are the request headers that make an answer partial or
// conditional (RFC 9110, 13.1 and 14.2): a 206, 304, 412 or 416, or a 200
// chosen by them, is not the page a plain request gets.
var conditionalHeaders = []string{
	"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Range",
}

// isConditional reports whether a request has Range, If-Range or a
// precondition, in any spelling.
func isConditional(h http.Header) bool {
	for k, vs := range h {
		if len(vs) == 0 || len(k) < len("Range") || len(k) > len("If-Unmodified-Since") {
			continue
		}
		for _, name := range conditionalHeaders {
			if strings.EqualFold(k, name) {
				return true
			}
		}
	}
	return false
}
