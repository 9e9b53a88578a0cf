package core

import (
	"context"
	"sync/atomic"
	"time"
)

// A request's store budget: the time it may spend waiting on the store, in
// total, across every guarded call it makes (a page lookup, its variant,
// its tags, a lock, a write). A front end opens one per request with
// WithBudget; every call with that context (or one derived from it) is
// given the time the budget has left as its deadline, and what it took is
// taken from the budget. Without a budget, each call is given the store
// timeout on its own.
//
// The budget counts time spent in store calls, not time since the first
// one: a handler that runs for seconds between two lookups does not spend
// it. Calls made at the same time each take what they waited, so
// concurrent calls spend it faster than the wall clock; the bound holds
// either way.

// budgetKey is the context key of a budget.
type budgetKey struct{}

// budgetCtx is a context carrying a request's budget.
type budgetCtx struct {
	context.Context
	left atomic.Int64 // nanoseconds of store time left
}

func (b *budgetCtx) Value(key any) any {
	if key == (budgetKey{}) {
		return b
	}
	return b.Context.Value(key)
}

// WithBudget returns a context under ctx that carries a store budget of one
// StoreTimeout for the calls made with it and the contexts derived from it:
// a request made of several store calls waits on the store for one
// StoreTimeout at most, in total. A ctx that carries a budget already (an
// outer middleware's) is returned as it is, so that nested front ends
// share one. Calls made after the budget is spent fail at once with
// ErrBudgetSpent. A cache whose store is in the process (null, memory),
// which is called without a timeout, returns ctx as it is.
func (c *Cache) WithBudget(ctx context.Context) context.Context {
	if r := c.store.Load(); r == nil || r.local || ctx.Value(budgetKey{}) != nil {
		return ctx
	}
	b := &budgetCtx{Context: ctx}
	b.left.Store(int64(c.storeTimeout()))
	return b
}

// budgetOf returns the budget carried by ctx, or nil.
func budgetOf(ctx context.Context) *budgetCtx {
	b, _ := ctx.Value(budgetKey{}).(*budgetCtx)
	return b
}

// minAllowance is the least a call is given: a budget with less left is
// spent (no store answers sooner).
const minAllowance = time.Millisecond

// allowance returns how long a call with budget b (nil: none) may take:
// the store timeout, or what b has left when that is less. ok is false
// when b is spent.
func (c *Cache) allowance(b *budgetCtx) (d time.Duration, ok bool) {
	d = c.storeTimeout()
	if b == nil {
		return d, true
	}
	left := time.Duration(b.left.Load())
	if left < minAllowance {
		return 0, false
	}
	return min(d, left), true
}

// spend takes took from b (nil: none).
func (b *budgetCtx) spend(took time.Duration) {
	if b != nil {
		b.left.Add(-int64(took))
	}
}

// WithoutBudget returns ctx without the store budget it may carry, for
// work that outlives the request's wait: a lock's release and a background
// refresh, whose calls each get the store timeout of their own.
func WithoutBudget(ctx context.Context) context.Context {
	if budgetOf(ctx) == nil {
		return ctx
	}
	return noBudget{ctx}
}

// noBudget hides the budget of the context it wraps.
type noBudget struct{ context.Context }

func (n noBudget) Value(key any) any {
	if key == (budgetKey{}) {
		return nil
	}
	return n.Context.Value(key)
}
