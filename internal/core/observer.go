package core

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/echocache/echocache/stores"
)

// Observer is the metrics hook of a Cache (echocache.Observer): anything
// that counts or traces (OpenTelemetry, StatsD, the Prometheus collector
// of metrics/prometheus) implements it. Its methods are called on the
// goroutine of the call they report, so they must be quick and must not
// block; they must be safe for concurrent use.
type Observer interface {
	// Lookup is called once for every lookup, with what it came to:
	// the same events the statistics count (Stats).
	Lookup(ctx context.Context, ev LookupEvent)
	// StoreCall is called after every call to a networked store, with
	// its duration and outcome. Calls to a store in the process (null,
	// memory) are not reported: they take nanoseconds and cannot fail
	// in ways worth a histogram.
	StoreCall(ctx context.Context, ev StoreCallEvent)
}

// LookupEvent is one lookup's outcome.
type LookupEvent struct {
	Feature Feature
	Result  Result
	// Detail says why for ResultBypass and ResultError (a Detail
	// constant), and for a ResultMiss whose entry did not open
	// (DetailCorrupt); "" otherwise.
	Detail BypassReason
}

// StoreCallEvent is one store call's outcome.
type StoreCallEvent struct {
	// Duration is the call's wall time, the store timeout included.
	Duration time.Duration
	// Err is nil when the store answered (a miss, stores.ErrNotFound,
	// and a refusal, such as stores.ErrTooLarge, are answers and are
	// reported as nil), else the call's error: the store's, or
	// context.DeadlineExceeded when the store timeout ended it.
	Err error
	// BreakerOpen is the circuit breaker's state after the call.
	BreakerOpen bool
}

// NopObserver observes nothing. Embed it in an Observer to implement only
// the methods you need.
type NopObserver struct{}

// Lookup does nothing.
func (NopObserver) Lookup(context.Context, LookupEvent) {}

// StoreCall does nothing.
func (NopObserver) StoreCall(context.Context, StoreCallEvent) {}

// observers is what Cache.obs points at: every observer of the cache.
type observers []Observer

func (o observers) Lookup(ctx context.Context, ev LookupEvent) {
	for _, x := range o {
		x.Lookup(ctx, ev)
	}
}

func (o observers) StoreCall(ctx context.Context, ev StoreCallEvent) {
	for _, x := range o {
		x.StoreCall(ctx, ev)
	}
}

var observeMu sync.Mutex // serializes AddObserver's copy-on-write

// AddObserver adds o to the observers of c. Observers added while calls
// are made see the calls that start after.
func (c *Cache) AddObserver(o Observer) {
	if o == nil {
		return
	}
	observeMu.Lock()
	defer observeMu.Unlock()
	var next observers
	if p := c.obs.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, o)
	c.obs.Store(&next)
}

// observeCall reports a store call that started at start and ended with
// err. It is the one place the guarded calls (calls.go) call the
// hook from.
func (c *Cache) observeCall(ctx context.Context, start time.Time, err error) {
	p := c.obs.Load()
	if p == nil || start.IsZero() {
		return
	}
	if errors.Is(err, stores.ErrNotFound) || refused(err) {
		err = nil
	}
	p.StoreCall(ctx, StoreCallEvent{Duration: time.Since(start), Err: err, BreakerOpen: c.BreakerOpen()})
}
