package flight

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// PanicError is the error callers receive when the shared call panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("flight: call panicked: %v", p.Value) }

type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Group deduplicates calls by key: the call runs on a goroutine of its own,
// with its own context, detached from any one caller's: it is cancelled
// only when every caller waiting for it has given up, so one impatient
// caller cannot fail the others (the shape of tailscale's
// singleflight.DoChanContext). A panic in the call is recovered and
// returned to every caller as an error, so waiters are never wedged. The
// typed API's loaders run in a Group. The zero value is ready to use.
type Group[V any] struct {
	mu    sync.Mutex
	calls map[string]*call[V]
}

// Do runs fn once for concurrent callers of the same key and returns its
// result to each of them. shared reports whether this caller received the
// result of a call started by another caller. If ctx ends before the result
// arrives, Do returns ctx.Err() at once; the call goes on for the remaining
// callers and is cancelled when none remain.
//
// fn's context carries ctx's values but not its cancellation or deadline.
func (g *Group[V]) Do(ctx context.Context, key string, fn func(ctx context.Context) (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*call[V])
	}
	c, ok := g.calls[key]
	if ok {
		c.waiters++
		g.mu.Unlock()
		v, err = g.wait(ctx, key, c)
		return v, true, err
	}
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c = &call[V]{done: make(chan struct{}), waiters: 1, cancel: cancel}
	g.calls[key] = c
	g.mu.Unlock()

	go g.run(callCtx, key, c, fn)
	v, err = g.wait(ctx, key, c)
	return v, false, err
}

func (g *Group[V]) run(ctx context.Context, key string, c *call[V], fn func(context.Context) (V, error)) {
	defer func() {
		if r := recover(); r != nil {
			c.err = &PanicError{Value: r, Stack: debug.Stack()}
		}
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		c.cancel()
		close(c.done)
	}()
	c.val, c.err = fn(ctx)
}

func (g *Group[V]) wait(ctx context.Context, key string, c *call[V]) (V, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		last := c.waiters == 0
		if last && g.calls[key] == c {
			// Nobody is left to receive the result: forget the call so a
			// new caller starts afresh, and cancel it.
			delete(g.calls, key)
		}
		g.mu.Unlock()
		if last {
			c.cancel()
		}
		var zero V
		return zero, ctx.Err()
	}
}

// Forget makes the next Do for key start a new call even if one is running.
func (g *Group[V]) Forget(key string) {
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
}
