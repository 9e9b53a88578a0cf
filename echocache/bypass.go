package echocache

// BypassReason says why a request or a call was not answered from the
// cache or its result not stored. [Stats.Bypasses] counts them.
type BypassReason string

// Bypass reasons of the route middleware ([Cache.Cached]).
const (
	// BypassNoStore: the Cache has no store yet (before Init).
	BypassNoStore BypassReason = "no-store"
	// BypassSkipper: RouteConfig.Skipper (or the deprecated Unless)
	// returned true.
	BypassSkipper BypassReason = "skipper"
	// BypassUnless is BypassSkipper.
	//
	// Deprecated: RouteConfig.Unless is folded into Skipper; use
	// BypassSkipper.
	BypassUnless = BypassSkipper
	// BypassMethod: not GET or HEAD, or a HEAD the route does not serve.
	BypassMethod BypassReason = "method"
	// BypassBody: a GET with content, which its answer may depend on.
	BypassBody BypassReason = "body"
	// BypassAuthorization: the request has Authorization (RFC 9111, 3.5),
	// and RouteConfig.AllowAuthorization is false.
	BypassAuthorization BypassReason = "authorization"
	// BypassKey: RouteConfig.KeyFunc returned "".
	BypassKey BypassReason = "key"
	// BypassHead: a HEAD request missed (HEAD responses are not stored).
	BypassHead BypassReason = "head"
	// BypassConditional: a miss with Range, If-Range or a precondition
	// (If-None-Match, ...; RFC 9110, 13.1), whose answer is not the page.
	BypassConditional BypassReason = "conditional"
	// BypassError: the handler returned an error.
	BypassError BypassReason = "error"
	// BypassPanic: the handler panicked.
	BypassPanic BypassReason = "panic"
	// BypassNoResponse: the handler wrote nothing.
	BypassNoResponse BypassReason = "no-response"
	// BypassHijacked: the handler hijacked the connection.
	BypassHijacked BypassReason = "hijacked"
	// BypassContext: the request's context ended before the handler
	// returned.
	BypassContext BypassReason = "context"
	// BypassWriteError: a write or flush to the client failed.
	BypassWriteError BypassReason = "write-error"
	// BypassLength: the body differs from the Content-Length the handler
	// declared.
	BypassLength BypassReason = "length"
	// BypassTrailer: the response has trailers, which are not stored.
	BypassTrailer BypassReason = "trailer"
	// BypassHeaderCase: a request header the key varies on is set under a
	// non-canonical name.
	BypassHeaderCase BypassReason = "header-case"
	// BypassStatus: the status is not in RouteConfig.AllowedStatuses.
	BypassStatus BypassReason = "status"
	// BypassSetCookie: the response sets a cookie.
	BypassSetCookie BypassReason = "set-cookie"
	// BypassCacheControl: Cache-Control no-store, private or no-cache.
	BypassCacheControl BypassReason = "cache-control"
	// BypassVary: the response has Vary: *.
	BypassVary BypassReason = "vary"
	// BypassTTL: SetTTL(c, 0), or a max-age of 0 with
	// RouteConfig.TTLFromCacheControl.
	BypassTTL BypassReason = "ttl"
	// BypassFilter: RouteConfig.ResponseFilter returned false.
	BypassFilter BypassReason = "filter"
	// BypassTagError: Tag could not read the tag versions.
	BypassTagError BypassReason = "tag-error"
	// BypassBadHeader: a header name or value that cannot be replayed.
	BypassBadHeader BypassReason = "bad-header"
)

// Bypass reasons of every part of the cache.
const (
	// BypassTooLarge: a page over RouteConfig.MaxBodySize, or a value,
	// page or fragment the store refused as too large
	// (stores.ErrTooLarge).
	BypassTooLarge BypassReason = "too-large"
)

// Bypass reasons of the typed API (GetOrSet, Function, Memoize).
const (
	// BypassZeroResult: a loader returned the zero value of its type,
	// which is not cached without CacheZero.
	BypassZeroResult BypassReason = "zero-result"
	// BypassUnencodable: the Codec could not encode a loader's result.
	BypassUnencodable BypassReason = "unencodable"
	// BypassUnkeyable: a Memoize argument had no cache key (see
	// ErrUnkeyable); the function ran uncached.
	BypassUnkeyable BypassReason = "unkeyable"
)
