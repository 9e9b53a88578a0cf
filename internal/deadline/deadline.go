// Package deadline gives store calls a deadline without a timer, for the
// stores that end a call by its context's deadline alone.
//
// A Cache bounds every call to a networked store with a deadline. With
// context.WithDeadline that costs a timer and a registration with the
// parent context on every call (about 3 % of a server's CPU on redis
// hits). A store that sets its context's deadline on its sockets (go-redis
// with ContextTimeoutEnabled, internal/mcbin) needs neither: [Context]
// carries the deadline and nothing fires at it. Such a store declares
// itself with [Register]; the cache asks [Honoured] once, when it is given
// the store, and gives every other store a context.WithDeadline.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Context is a context whose Deadline is d, or its parent's when that is
// earlier, and whose Done, Err and Value are its parent's: nothing
// happens at d. A store call with it ends at d only if the store sets d
// on its I/O, the way the stores passed to Register do. It is safe for
// concurrent use.
type Context struct {
	context.Context
	d time.Time
}

// With returns a Context with deadline d under parent.
func With(parent context.Context, d time.Time) *Context {
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &Context{Context: parent, d: d}
}

// Deadline returns the deadline and true.
func (c *Context) Deadline() (time.Time, bool) { return c.d, true }

var (
	mu      sync.RWMutex
	finders []func(store any) bool
)

// Register adds a function that recognises stores whose calls end by
// their context's deadline without waiting for its Done channel (waits
// that only Done could end, a pool's queue say, are bounded by calls that
// do end by their deadlines).
func Register(honours func(store any) bool) {
	mu.Lock()
	defer mu.Unlock()
	finders = append(finders, honours)
}

// Honoured reports whether store ends its calls by their context's
// deadline alone, so that a [Context] bounds them.
func Honoured(store any) bool {
	mu.RLock()
	fs := finders // appended to only, so this view stays valid
	mu.RUnlock()
	for _, honours := range fs {
		if honours(store) {
			return true
		}
	}
	return false
}
