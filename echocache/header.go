package echocache

import (
	"net/http"
	"slices"
	"strings"
)

// Header names in any case. net/http canonicalises the names it parses,
// but code may assign a header map directly (h["authorization"] = ...):
// every rule of the middleware must see such a header as well, or a
// request with credentials, or a response that says private, would be
// shared.

// headerValues returns the values of the header name (canonical) in h
// under every spelling: the canonical one first, then the others in sorted
// order. ok reports whether any spelling is present.
func headerValues(h http.Header, name string) (values []string, ok bool) {
	values, ok = h[name]
	var others []string
	for k := range h {
		if len(k) == len(name) && k != name && strings.EqualFold(k, name) {
			others = append(others, k)
		}
	}
	if len(others) == 0 {
		return values, ok
	}
	slices.Sort(others)
	values = slices.Clip(values)
	for _, k := range others {
		values = append(values, h[k]...)
	}
	return values, true
}

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
