package core

// The vocabulary of what a lookup came to, shared by the statistics
// (stats.go), the observer hook (observer.go) and the Cache-Status response
// header (RFC 9211) of cached routes: every part of the cache reports a
// lookup as a Feature, a Result and, where there is one, a detail reason.

// Feature is the part of the cache a lookup was made for.
type Feature uint8

// The features, in the order of Features.
const (
	FeaturePage     Feature = iota // a cached route's page (Cached)
	FeatureValue                   // a typed value (Get, GetMany, GetOrSet, Function)
	FeatureMemoize                 // a memoized call (Memoize)
	FeatureFragment                // a template block (pongotag's cache tag)
	numFeatures
)

var featureNames = [numFeatures]string{"page", "value", "memoize", "fragment"}

// Features lists every Feature, for callers that range over them.
var Features = [numFeatures]Feature{FeaturePage, FeatureValue, FeatureMemoize, FeatureFragment}

// String returns the feature's name as metrics label it: "page", "value",
// "memoize" or "fragment".
func (f Feature) String() string {
	if f < numFeatures {
		return featureNames[f]
	}
	return "unknown"
}

// Result is what one lookup came to. Each lookup has exactly one, so the
// counts of the results of a feature add up to its lookups.
type Result uint8

// The results, in the order of Results.
const (
	// ResultHit: a fresh entry answered (RFC 9211 "hit").
	ResultHit Result = iota
	// ResultMiss: nothing usable was stored (RFC 9211 "fwd=uri-miss").
	ResultMiss
	// ResultStale: a stale entry answered, inside stale-while-revalidate
	// or in place of a failure with stale-if-error (RFC 9211 "fwd=stale"
	// or a hit with a negative ttl).
	ResultStale
	// ResultBypass: the cache was not consulted (RFC 9211 "fwd=bypass"):
	// the detail says why (DetailSkipper, DetailMethod,
	// DetailAuthorization...).
	ResultBypass
	// ResultError: the store could not answer (DetailStoreError) or was
	// skipped by the circuit breaker (DetailStoreUnavailable). The
	// request or call ran as on a miss, and the statistics count it as a
	// miss too.
	ResultError
	numResults
)

var resultNames = [numResults]string{"hit", "miss", "stale", "bypass", "error"}

// Results lists every Result, for callers that range over them.
var Results = [numResults]Result{ResultHit, ResultMiss, ResultStale, ResultBypass, ResultError}

// String returns the result's name as metrics label it: "hit", "miss",
// "stale", "bypass" or "error".
func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "unknown"
}

// BypassReason is a detail reason (echocache.BypassReason): one of the
// Detail constants below, as the observer hook (LookupEvent.Detail) and
// the statistics (echocache.Stats.Bypasses) carry it.
type BypassReason string

// Detail reasons: why a lookup was bypassed or failed, or why what a miss
// computed was not stored. They are the values of echocache.BypassReason
// and of the "detail" parameter of Cache-Status (RFC 9211, 2.8), tokens
// that name the cause without saying anything about the request.
const (
	// DetailStoreError: the store failed or timed out (ResultError).
	DetailStoreError = "store-error"
	// DetailStoreUnavailable: the circuit breaker skipped the store
	// (ResultError).
	DetailStoreUnavailable = "store-unavailable"

	// Bypasses of a route (ResultBypass).

	// DetailNoStore: the Cache has no store yet (echocache.New(nil)
	// before Init). Its token is "uninitialized", not "no-store", which
	// would read as the Cache-Control directive (RFC 9111, 5.2.2.5).
	DetailNoStore = "uninitialized"
	// DetailSkipper: the route's Skipper returned true.
	DetailSkipper = "skipper"
	// DetailMethod: not GET or HEAD, or a HEAD the route does not serve.
	DetailMethod = "method"
	// DetailBody: a GET with content.
	DetailBody = "body"
	// DetailAuthorization: the request has Authorization (RFC 9111, 3.5).
	DetailAuthorization = "authorization"
	// DetailKey: the route's key function returned "".
	DetailKey = "key"

	// Misses whose answer is not stored, or not the request's to store.

	// DetailHead: a HEAD request missed (HEAD responses are not stored).
	DetailHead = "head"
	// DetailConditional: a miss with Range, If-Range or a precondition
	// (RFC 9110, 13.1).
	DetailConditional = "conditional"
	// DetailError: the handler returned an error or handed one to its
	// framework's error handler, or a second status was written after
	// the first (echocache.BypassError).
	DetailError = "error"
	// DetailPanic: the handler panicked.
	DetailPanic = "panic"
	// DetailNoResponse: the handler wrote nothing.
	DetailNoResponse = "no-response"
	// DetailHijacked: the handler hijacked the connection.
	DetailHijacked = "hijacked"
	// DetailContext: the request's context ended before the handler
	// returned.
	DetailContext = "context"
	// DetailWriteError: a write or flush to the client failed.
	DetailWriteError = "write-error"
	// DetailLength: the body differs from its declared Content-Length.
	DetailLength = "length"
	// DetailTrailer: the response has trailers.
	DetailTrailer = "trailer"
	// DetailEventStream: the response is an event stream
	// (text/event-stream), live by nature: a replay would send old events.
	DetailEventStream = "event-stream"
	// DetailHeaderCase: a request header the key varies on is set under a
	// non-canonical name.
	DetailHeaderCase = "header-case"
	// DetailStatus: a status the route does not store.
	DetailStatus = "status"
	// DetailSetCookie: the response sets a cookie.
	DetailSetCookie = "set-cookie"
	// DetailCacheControl: Cache-Control no-store, private or no-cache.
	DetailCacheControl = "cache-control"
	// DetailVary: the response has Vary: *.
	DetailVary = "vary"
	// DetailTTL: a TTL of 0 (SetTTL, or max-age=0 read from the
	// response).
	DetailTTL = "ttl"
	// DetailFilter: the route's ResponseFilter refused the response.
	DetailFilter = "filter"
	// DetailTagError: the tag versions could not be read.
	DetailTagError = "tag-error"
	// DetailBadHeader: a header name or value that cannot be replayed.
	DetailBadHeader = "bad-header"
	// DetailInvalidated: DeletePage, DeletePageKey, InvalidateTag or
	// Clear ran while the handler did; what it computed may predate the
	// change.
	DetailInvalidated = "invalidated"
	// DetailWriteBacklog: the most page writes a Cache runs in the
	// background were under way; the response was sent and not stored.
	DetailWriteBacklog = "write-backlog"

	// Hits.

	// DetailLocal: the page was read from the copy a local tier
	// (stores.LocalTier) keeps in the process, without a round trip to
	// the shared store. It is a hit like any other.
	DetailLocal = "local"

	// Every feature.

	// DetailCorrupt: a stored entry did not open (damaged, forged, or
	// written in another format); it was logged and deleted, and the
	// lookup is a miss (ResultMiss, whose event carries this detail).
	DetailCorrupt = "corrupt"

	// DetailTooLarge: over the route's body cap, or refused by the store
	// as too large (stores.ErrTooLarge).
	DetailTooLarge = "too-large"

	// The typed API and memoize.

	// DetailZeroResult: a loader returned its type's zero value, which is
	// not cached without CacheZero.
	DetailZeroResult = "zero-result"
	// DetailUnencodable: the Codec could not encode a loader's result.
	DetailUnencodable = "unencodable"
	// DetailUnkeyable: a Memoize argument has no cache key (ResultBypass).
	DetailUnkeyable = "unkeyable"
)
