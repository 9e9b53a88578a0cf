package echocache

import "github.com/echocache/echocache/internal/core"

// Observer is the metrics hook of a Cache, set with [Config.Observer]:
// anything that counts or traces (OpenTelemetry, StatsD, the Prometheus
// collector of github.com/echocache/echocache/metrics/prometheus)
// implements it. It has two methods, both context first:
//
//	Lookup(ctx context.Context, ev LookupEvent)       // once per lookup
//	StoreCall(ctx context.Context, ev StoreCallEvent) // after each call to a networked store
//
// Lookup gets the events [Stats] counts: each lookup of each [Feature]
// with its [Result] and, for a bypass or an error, the reason. StoreCall
// gets each call to a networked store (not to null:// or memory://) with
// its duration, its error (nil when the store answered, a miss included)
// and the circuit breaker's state after it. The methods run on the
// goroutine of the call they report: they must be quick, must not block,
// and must be safe for concurrent use. Embed [NopObserver] to implement
// only one of them.
type Observer = core.Observer

// NopObserver observes nothing; embed it in an Observer to implement only
// the methods you need.
type NopObserver = core.NopObserver

// LookupEvent is one lookup's outcome: Feature, Result, and Detail, a
// [BypassReason]: the reason of a ResultBypass (BypassMethod,
// BypassAuthorization...) or of a ResultError (DetailStoreError,
// DetailStoreUnavailable, DetailContext), DetailCorrupt on a page's
// ResultMiss whose entry did not open, "" otherwise.
type LookupEvent = core.LookupEvent

// StoreCallEvent is one store call's outcome: Duration (wall time, the
// store timeout included), Err (nil when the store answered, a miss or a
// refusal such as stores.ErrTooLarge included; the store's error, or
// context.DeadlineExceeded when StoreTimeout ended it) and BreakerOpen (the
// circuit breaker's state after the call).
type StoreCallEvent = core.StoreCallEvent

// Feature is the part of the cache a lookup was made for. Its String is
// the name metrics label it with.
type Feature = core.Feature

// The features.
const (
	FeaturePage     = core.FeaturePage     // "page": cached routes (Cached)
	FeatureValue    = core.FeatureValue    // "value": Get, GetMany, GetOrSet, Function
	FeatureMemoize  = core.FeatureMemoize  // "memoize": Memoize
	FeatureFragment = core.FeatureFragment // "fragment": pongotag's cache tag
)

// Result is what one lookup came to; each lookup has exactly one. Its
// String is the name metrics label it with.
type Result = core.Result

// The results. Their vocabulary is RFC 9211's (Cache-Status).
const (
	// ResultHit: a fresh entry answered ("hit").
	ResultHit = core.ResultHit
	// ResultMiss: nothing usable was stored ("fwd=uri-miss").
	ResultMiss = core.ResultMiss
	// ResultStale: a stale entry answered (stale-while-revalidate,
	// stale-if-error).
	ResultStale = core.ResultStale
	// ResultBypass: the cache was not consulted ("fwd=bypass"); the
	// event's Detail says why.
	ResultBypass = core.ResultBypass
	// ResultError: the store could not answer; the request or call ran as
	// on a miss, and Stats counts it as a miss too.
	ResultError = core.ResultError
)

// The Detail of a ResultError lookup, and of a ResultMiss whose entry did
// not open.
const (
	// DetailStoreError: the store failed or timed out.
	DetailStoreError BypassReason = core.DetailStoreError
	// DetailStoreUnavailable: the circuit breaker skipped the store.
	DetailStoreUnavailable BypassReason = core.DetailStoreUnavailable
	// DetailContext: the caller's context ended before the store
	// answered.
	DetailContext BypassReason = core.DetailContext
	// DetailCorrupt: a ResultMiss whose stored entry did not open
	// (damaged, forged, or written in another format); it was logged,
	// counted in Stats.CorruptEntries and deleted. Cached routes also say
	// it in Cache-Status (detail=corrupt).
	DetailCorrupt BypassReason = core.DetailCorrupt
)
