package echocache

import (
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
)

// BypassReason says why a request or a call was not answered from the
// cache or its result not stored. [Stats.Bypasses] counts them; the
// values are the "detail" tokens of lookups ([LookupEvent].Detail, which
// has this type) and of Cache-Status (RFC 9211, 2.8).
type BypassReason = core.BypassReason

// Bypass reasons of the route middleware ([Cache.Cached]).
const (
	// BypassNoStore: the Cache has no store yet (New(nil) before Init).
	// Its token is "uninitialized" (Cache-Status detail=uninitialized),
	// so that it does not read as Cache-Control: no-store.
	BypassNoStore BypassReason = pagecache.BypassNoStore
	// BypassSkipper: RouteConfig.Skipper (or the deprecated Unless)
	// returned true.
	BypassSkipper BypassReason = pagecache.BypassSkipper
	// BypassUnless is BypassSkipper.
	//
	// Deprecated: RouteConfig.Unless is folded into Skipper; use
	// BypassSkipper.
	BypassUnless = BypassSkipper
	// BypassMethod: not GET or HEAD, or a HEAD the route does not serve.
	BypassMethod BypassReason = pagecache.BypassMethod
	// BypassBody: a GET with content, which its answer may depend on.
	BypassBody BypassReason = pagecache.BypassBody
	// BypassAuthorization: the request has Authorization (RFC 9111, 3.5),
	// and RouteConfig.AllowAuthorization is false.
	BypassAuthorization BypassReason = pagecache.BypassAuthorization
	// BypassKey: RouteConfig.KeyFunc returned "".
	BypassKey BypassReason = pagecache.BypassKey
	// BypassHead: a HEAD request missed (HEAD responses are not stored).
	BypassHead BypassReason = pagecache.BypassHead
	// BypassConditional: a miss with Range, If-Range or a precondition
	// (If-None-Match, ...; RFC 9110, 13.1), whose answer is not the page.
	BypassConditional BypassReason = pagecache.BypassConditional
	// BypassError: the handler returned an error, handed one to Echo's
	// HTTPErrorHandler (c.Error; middleware.Recover inside the route does
	// that with a panic), or a status other than the one already sent was
	// written after it (a net/http recovering middleware's 500).
	BypassError BypassReason = pagecache.BypassError
	// BypassPanic: the handler panicked.
	BypassPanic BypassReason = pagecache.BypassPanic
	// BypassNoResponse: the handler wrote nothing.
	BypassNoResponse BypassReason = pagecache.BypassNoResponse
	// BypassHijacked: the handler hijacked the connection.
	BypassHijacked BypassReason = pagecache.BypassHijacked
	// BypassContext: the request's context ended before the handler
	// returned.
	BypassContext BypassReason = pagecache.BypassContext
	// BypassWriteError: a write or flush to the client failed.
	BypassWriteError BypassReason = pagecache.BypassWriteError
	// BypassLength: the body differs from the Content-Length the handler
	// declared.
	BypassLength BypassReason = pagecache.BypassLength
	// BypassTrailer: the response has trailers, which are not stored.
	BypassTrailer BypassReason = pagecache.BypassTrailer
	// BypassEventStream: the response is a server-sent event stream
	// (Content-Type text/event-stream), whose events are live: replayed,
	// a later client would get old events at once.
	BypassEventStream BypassReason = pagecache.BypassEventStream
	// BypassHeaderCase: a request header the key varies on is set under a
	// non-canonical name.
	BypassHeaderCase BypassReason = pagecache.BypassHeaderCase
	// BypassStatus: the status is not in RouteConfig.AllowedStatuses.
	BypassStatus BypassReason = pagecache.BypassStatus
	// BypassSetCookie: the response sets a cookie.
	BypassSetCookie BypassReason = pagecache.BypassSetCookie
	// BypassCacheControl: Cache-Control no-store, private or no-cache.
	BypassCacheControl BypassReason = pagecache.BypassCacheControl
	// BypassVary: the response has Vary: *.
	BypassVary BypassReason = pagecache.BypassVary
	// BypassTTL: SetTTL(c, 0), or a max-age of 0 with
	// RouteConfig.TTLFromCacheControl.
	BypassTTL BypassReason = pagecache.BypassTTL
	// BypassFilter: RouteConfig.ResponseFilter returned false.
	BypassFilter BypassReason = pagecache.BypassFilter
	// BypassTagError: Tag could not read the tag versions.
	BypassTagError BypassReason = pagecache.BypassTagError
	// BypassBadHeader: a header name or value that cannot be replayed.
	BypassBadHeader BypassReason = pagecache.BypassBadHeader
	// BypassInvalidated: DeletePage, DeletePageKey, InvalidateTag or Clear
	// ran while the handler did; the response, which may predate the
	// change, was not stored.
	BypassInvalidated BypassReason = pagecache.BypassInvalidated
	// BypassWriteBacklog: MaxPendingWrites page writes to the networked
	// store were under way already; the response was sent and not stored.
	BypassWriteBacklog BypassReason = pagecache.BypassWriteBacklog
)

// Bypass reasons of every part of the cache.
const (
	// BypassTooLarge: a page over RouteConfig.MaxBodySize, or a value,
	// page or fragment the store refused as too large
	// (stores.ErrTooLarge).
	BypassTooLarge BypassReason = pagecache.BypassTooLarge
)

// Bypass reasons of the typed API (GetOrSet, Function, Memoize).
const (
	// BypassZeroResult: a loader returned the zero value of its type,
	// which is not cached without CacheZero.
	BypassZeroResult BypassReason = core.DetailZeroResult
	// BypassUnencodable: the Codec could not encode a loader's result.
	BypassUnencodable BypassReason = core.DetailUnencodable
	// BypassUnkeyable: a Memoize argument had no cache key (see
	// ErrUnkeyable); the function ran uncached.
	BypassUnkeyable BypassReason = core.DetailUnkeyable
)
