package flight

import (
	"context"
	"slices"
	"sync"
)

// Turns runs, per key, the work of concurrent callers one at a time on the
// callers' own goroutines, and shares what a caller publishes with every
// caller waiting for the key.
//
// The callers of one key form a flight. At most a limit of them hold a
// turn at once (one, at first); the others queue. A caller whose work gave
// a value every waiter may use publishes it with [Turn.Share]: the flight
// ends and each waiter returns that value. A caller that ends its turn
// without sharing hands it to the oldest waiter, which then runs the work
// itself, so that work that fails, panics or is cut short runs again for
// one waiter at a time, never for all at once. When the work answered its
// own caller whole but could not be shared ([Turn.Answered]: a private
// page, a cookie, a 404), one more waiter may run alongside (slow start):
// waiters that each need an answer of their own get it without a herd. A
// failure brings the limit back to one.
//
// The zero value is ready to use. It is safe for concurrent use.
type Turns[V any] struct {
	mu      sync.Mutex
	flights map[string]*turnFlight[V]
}

// turnFlight is the callers of one key.
type turnFlight[V any] struct {
	done chan struct{} // closed when val is published
	val  V

	// Guarded by Turns.mu.
	running int             // callers holding a turn
	limit   int             // turns at once
	queue   []chan struct{} // waiters, oldest first; a turn is sent on theirs
}

// A Turn is the right to run the work of a key. Its holder records the
// outcome with Share or Answered, and must call End once, typically
// deferred, which publishes the shared value or hands the turn on. A Turn
// is used by one goroutine.
type Turn[V any] struct {
	t        *Turns[V]
	key      string
	f        *turnFlight[V]
	val      V
	shared   bool
	answered bool
	ended    bool
}

// Join joins the flight of key. It returns a Turn when the caller is to run
// the work; otherwise it waits and returns the value another caller
// published. When ctx ends first it leaves the queue (handing on a turn it
// was given meanwhile) and returns ctx's error. onWait, when not nil, is
// called once the caller is queued, before it blocks.
func (t *Turns[V]) Join(ctx context.Context, key string, onWait func()) (*Turn[V], V, error) {
	var zero V
	t.mu.Lock()
	if t.flights == nil {
		t.flights = make(map[string]*turnFlight[V])
	}
	f := t.flights[key]
	if f == nil {
		f = &turnFlight[V]{done: make(chan struct{}), limit: 1}
		t.flights[key] = f
	}
	if f.running < f.limit {
		f.running++
		t.mu.Unlock()
		return &Turn[V]{t: t, key: key, f: f}, zero, nil
	}
	turn := make(chan struct{}, 1)
	f.queue = append(f.queue, turn)
	t.mu.Unlock()
	if onWait != nil {
		onWait()
	}

	select {
	case <-f.done:
		return nil, f.val, nil
	case <-turn:
		select {
		case <-f.done:
			// Published while the turn was on its way: no need to run.
			t.mu.Lock()
			f.running--
			t.handOn(key, f)
			t.mu.Unlock()
			return nil, f.val, nil
		default:
			return &Turn[V]{t: t, key: key, f: f}, zero, nil
		}
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		if i := slices.Index(f.queue, turn); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
		} else if len(turn) > 0 {
			<-turn
			f.running--
			t.handOn(key, f)
		}
		return nil, zero, ctx.Err()
	}
}

// Share records v as the outcome every waiter may use: End publishes it.
func (tn *Turn[V]) Share(v V) { tn.val, tn.shared = v, true }

// Answered records that the work answered its own caller whole, with a
// result that could not be shared: End lets one more waiter run at once.
func (tn *Turn[V]) Answered() { tn.answered = true }

// End ends the turn: it publishes the shared value, ending the flight, or
// hands the turn on. Calls after the first do nothing.
func (tn *Turn[V]) End() {
	if tn.ended {
		return
	}
	tn.ended = true
	t, f := tn.t, tn.f
	t.mu.Lock()
	defer t.mu.Unlock()
	f.running--
	if tn.shared {
		if t.flights[tn.key] == f {
			delete(t.flights, tn.key)
			f.val = tn.val
			f.queue = nil
			close(f.done)
		}
		return
	}
	if tn.answered {
		f.limit++
	} else {
		f.limit = 1
	}
	t.handOn(tn.key, f)
}

// handOn gives free turns to the oldest waiters, and drops the flight once
// nobody is left in it. t.mu is held.
func (t *Turns[V]) handOn(key string, f *turnFlight[V]) {
	for f.running < f.limit && len(f.queue) > 0 {
		turn := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		f.running++
		turn <- struct{}{}
	}
	if f.running == 0 && len(f.queue) == 0 && t.flights[key] == f {
		delete(t.flights, key)
	}
}
