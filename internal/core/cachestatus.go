package core

import (
	"strconv"
	"time"
)

// CacheStatus is what one response's Cache-Status member (RFC 9211) says:
// the lookup's Result and Detail, and what happened after it. The route
// middleware fills one per response and writes it with AppendCacheStatus.
type CacheStatus struct {
	Result Result
	// Detail is the detail parameter (RFC 9211, 2.8): a Detail constant,
	// or "" for none.
	Detail string
	// TTL is the response's remaining freshness (2.7), negative when it
	// is stale; written for ResultHit and ResultStale only.
	TTL time.Duration
	// Stored reports that the response was stored (2.5).
	Stored bool
	// Collapsed reports a miss that waited for another request's
	// response and was served it (2.6).
	Collapsed bool
	// FwdStatus is the status of the forwarded response that a stale one
	// replaced (stale-if-error, 2.3); 0 for none.
	FwdStatus int
}

// AppendCacheStatus appends to dst the Cache-Status member of the cache
// named name (an sf-token such as "echocache", or any string, which is
// then quoted) for st:
//
//	hit                     name; hit; ttl=42
//	stale (revalidating)    name; hit; ttl=-3
//	stale (in place of 5xx) name; fwd=stale; fwd-status=503; ttl=-3; detail=...
//	miss                    name; fwd=uri-miss; stored   (collapsed when it shared another's)
//	bypass                  name; fwd=bypass; detail=authorization   (fwd=method for DetailMethod)
//	error                   name; fwd=miss; detail=store-error
//
// A store that could not be asked is fwd=miss, not uri-miss: the cache
// does not know whether it holds the URI.
func AppendCacheStatus(dst []byte, name string, st CacheStatus) []byte {
	dst = appendSFKey(dst, name)
	switch st.Result {
	case ResultHit:
		dst = append(dst, "; hit"...)
	case ResultStale:
		if st.FwdStatus != 0 {
			dst = append(dst, "; fwd=stale; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(st.FwdStatus), 10)
		} else {
			dst = append(dst, "; hit"...)
		}
	case ResultMiss:
		dst = append(dst, "; fwd=uri-miss"...)
	case ResultBypass:
		if st.Detail == DetailMethod {
			dst = append(dst, "; fwd=method"...)
		} else {
			dst = append(dst, "; fwd=bypass"...)
		}
	case ResultError:
		dst = append(dst, "; fwd=miss"...)
	}
	if st.Result == ResultHit || st.Result == ResultStale {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, int64(st.TTL/time.Second), 10)
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
