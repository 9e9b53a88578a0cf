package core

import (
	"strconv"
	"time"
)

// The values of Cache-Status's fwd parameter (RFC 9211, 2.2): why a
// request went forward to the handler, from most specific to least.
const (
	// FwdBypass: the cache was configured not to handle the request
	// (ResultBypass).
	FwdBypass = "bypass"
	// FwdMethod: the request method's semantics require it to go forward
	// (ResultBypass with DetailMethod).
	FwdMethod = "method"
	// FwdURIMiss: nothing was stored for the request's URI (ResultMiss).
	FwdURIMiss = "uri-miss"
	// FwdVaryMiss: a response for the URI was stored, but none for the
	// request's values of the headers it varies on.
	FwdVaryMiss = "vary-miss"
	// FwdMiss: nothing usable, without knowing whether anything was
	// stored for the URI (ResultError: the store could not be asked).
	FwdMiss = "miss"
	// FwdStale: a stored response was selected, but it was stale
	// (expired, or invalidated by a tag).
	FwdStale = "stale"
)

// CacheStatus is what one response's Cache-Status member (RFC 9211) says:
// the lookup's Result and Detail, and what happened after it. The route
// middleware fills one per response and writes it with AppendCacheStatus.
type CacheStatus struct {
	Result Result
	// Fwd is the fwd parameter (2.2) when it is more specific than the
	// Result's: FwdVaryMiss or FwdStale for a ResultMiss, FwdStale for a
	// ResultStale that went forward. "" means the Result's: FwdURIMiss,
	// FwdBypass (FwdMethod for DetailMethod), FwdMiss for ResultError.
	Fwd string
	// Detail is the detail parameter (2.8): a Detail constant, or "" for
	// none.
	Detail string
	// TTL is the response's remaining freshness (2.7), negative when it
	// is stale, written in whole seconds rounded down; written for
	// ResultHit, ResultStale and a Stored response, unless NoExpiry.
	TTL time.Duration
	// NoExpiry reports a response that never goes stale (stores.NoExpiry):
	// it has no ttl to write.
	NoExpiry bool
	// Stored reports that the response was stored (2.5).
	Stored bool
	// Collapsed reports a miss that waited for another request's
	// response and was served it (2.6).
	Collapsed bool
	// FwdStatus is the status of the forwarded response that a stale one
	// replaced (stale-if-error, 2.3); 0 for none (fwd-status then defaults
	// to the status of the response itself).
	FwdStatus int
}

// AppendCacheStatus appends to dst the Cache-Status member of the cache
// named name (an sf-token such as "echocache", or any string, which is
// then quoted) for st:
//
//	hit                     name; hit; ttl=42
//	hit from a local tier   name; hit; ttl=42; detail=local
//	stale (revalidating)    name; hit; ttl=-3
//	stale (in place of 5xx) name; fwd=stale; fwd-status=503; ttl=-3; detail=status
//	miss                    name; fwd=uri-miss; ttl=60; stored   (collapsed when it shared another's)
//	miss, not stored        name; fwd=uri-miss; detail=set-cookie
//	bypass                  name; fwd=bypass; detail=authorization   (fwd=method for DetailMethod)
//	error                   name; fwd=miss; detail=store-error
//
// A store that could not be asked is fwd=miss, not uri-miss: the cache
// does not know whether it holds the URI. "hit" and "fwd" are exclusive
// (2.1): a stale page served without going forward is a hit with a
// negative ttl (RFC 9211, section 3).
func AppendCacheStatus(dst []byte, name string, st CacheStatus) []byte {
	dst = appendSFKey(dst, name)
	fwd := st.Fwd
	switch st.Result {
	case ResultHit:
		fwd = ""
	case ResultStale:
		if st.FwdStatus != 0 {
			fwd = FwdStale
		}
	case ResultMiss:
		fwd = or(fwd, FwdURIMiss)
	case ResultBypass:
		if st.Detail == DetailMethod {
			fwd = or(fwd, FwdMethod)
		}
		fwd = or(fwd, FwdBypass)
	case ResultError:
		fwd = or(fwd, FwdMiss)
	}
	if fwd == "" {
		dst = append(dst, "; hit"...)
	} else {
		dst = append(dst, "; fwd="...)
		dst = append(dst, fwd...)
		if st.FwdStatus != 0 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(st.FwdStatus), 10)
		}
	}
	if (fwd == "" || st.Result == ResultStale || st.Stored) && !st.NoExpiry {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, floorSeconds(st.TTL), 10)
	}
	if st.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if st.Stored {
		dst = append(dst, "; stored"...)
	}
	if st.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendSFKey(dst, st.Detail)
	}
	return dst
}

// floorSeconds returns d in whole seconds, rounded down: a page stale by
// half a second has a ttl of -1, not 0.
func floorSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second < 0 {
		s--
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ValidCacheStatusName reports whether name can name a cache in
// Cache-Status as it is: a non-empty string of printable ASCII (it is
// written as an sf-token when it is one, else as an sf-string).
func ValidCacheStatusName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

// appendSFKey appends s as an sf-token when it is one (RFC 8941, 3.3.4),
// else as an sf-string, its characters outside printable ASCII dropped.
func appendSFKey(dst []byte, s string) []byte {
	if isSFToken(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func isSFToken(s string) bool {
	if s == "" || !(s[0] == '*' || s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x21 || c > 0x7e || c == '"' || c == '(' || c == ')' || c == ',' || c == ';' ||
			c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' ||
			c == ']' || c == '{' || c == '}':
			return false
		}
	}
	return true
}
