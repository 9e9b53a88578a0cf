package pagecache

import (
	"net/http"
	"slices"
	"strings"
)

// Header names in any case. net/http canonicalises the names it parses,
// but code may assign a header map directly (h["cache-control"] = ...),
// and net/http sends such a response header as it is. Every rule that
// reads a header reads its name in any case: those that decide whether a
// response is stored, or a response that says private, or one made for a
// request with credentials, would be shared; and those of the hit path
// (Authorization, If-None-Match, the vary headers that select a variant),
// or a request would get a page made for another. The common case, a
// header map whose names are all canonical, costs one map lookup and one
// pass over the names comparing lengths.

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

// headerValues returns the values of a header name (canonical) in every
// spelling: the canonical one's, then the others' in the order of their
// names, so that one request always gives one list. ok reports whether
// any spelling is present. It allocates only when another spelling is.
func headerValues(h http.Header, name string) (vs []string, ok bool) {
	vs, ok = h[name]
	var others []string
	for k := range h {
		if len(k) == len(name) && k != name && strings.EqualFold(k, name) {
			others = append(others, k)
		}
	}
	if others == nil {
		return vs, ok
	}
	return withSpellings(h, vs, others), true
}

// withSpellings returns a copy of vs followed by the values of others,
// names of other spellings in h, in the order of the names.
func withSpellings(h http.Header, vs, others []string) []string {
	slices.Sort(others)
	vs = slices.Clone(vs)
	for _, k := range others {
		vs = append(vs, h[k]...)
	}
	return vs
}

// dropConditional deletes the Range, If-Range and precondition headers of
// a request (conditionalHeaders), in every spelling.
func dropConditional(h http.Header) {
	for k := range h {
		for _, name := range conditionalHeaders {
			if strings.EqualFold(k, name) {
				delete(h, k)
			}
		}
	}
}

// hitHeaders reads, in one pass over a request's header names, what the
// hit path needs of every request, each in any spelling: whether it
// carries Authorization, and its If-None-Match values (as headerValues
// lists them). Both names are 13 bytes long, so one length test passes
// over every other name.
func hitHeaders(h http.Header) (auth bool, inm []string) {
	auth = len(h["Authorization"]) > 0
	inm = h["If-None-Match"]
	var others []string
	for k, vs := range h {
		if len(k) != len("Authorization") || len(vs) == 0 || k == "Authorization" || k == "If-None-Match" {
			continue
		}
		switch {
		case strings.EqualFold(k, "Authorization"):
			auth = true
		case strings.EqualFold(k, "If-None-Match"):
			others = append(others, k)
		}
	}
	if others != nil {
		inm = withSpellings(h, inm, others)
	}
	return auth, inm
}

// ifNoneMatch returns a request's If-None-Match values, in any spelling.
func ifNoneMatch(h http.Header) []string {
	vs, _ := headerValues(h, "If-None-Match")
	return vs
}
