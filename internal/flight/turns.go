package flight

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrPass is returned by [Turns.Join] to a caller that is to run the work
// for itself, at once and without waiting: the last answer for the key
// could not be shared by its nature (see [Turn.Pass]), or failed twice in
// a row, and the key is marked pass. It is Varnish's hit-for-pass, kept
// in the process.
var ErrPass = errors.New("flight: pass")

// Turns runs, per key, the work of concurrent callers one at a time on the
// callers' own goroutines, and shares what a caller publishes with every
// caller waiting for the key.
//
// The callers of one key form a flight. One of them holds a turn; the
// others queue. A caller whose work gave a value every waiter may use
// publishes it with [Turn.Share]: the flight ends and each waiter returns
// that value. A caller whose work answered its own caller whole but could
// not be shared by its nature ([Turn.Pass]: a private page, a cookie, a
// 404) releases every waiter at once: each returns [ErrPass] and runs the
// work for itself, since waiting for another caller's answer would only
// serialize answers that are never shared. A caller that ends its turn
// without either (the work failed, panicked or was cut short) hands the
// turn to the oldest waiter, so that work against a failing backend runs
// again for one waiter, not for all at once; when the turn has a pass
// duration ([Turn.PassFor]) and that waiter fails too, the rest are
// released as after Pass.
//
// Pass (and the second failure) also marks the key pass for the turn's
// pass duration: until it passes, Join returns ErrPass at once to every
// caller of the key, which neither waits nor is waited for.
//
// The zero value is ready to use. It is safe for concurrent use.
type Turns[V any] struct {
	mu        sync.Mutex
	flights   map[string]*turnFlight[V]
	passes    map[string]time.Time // keys marked pass, until when
	nextSweep int                  // size of passes at which expired marks are dropped
}

// turnFlight is the callers of one key.
type turnFlight[V any] struct {
	done chan struct{} // closed when val is published
	val  V

	// Guarded by Turns.mu.
	running  bool        // a caller holds the turn
	failures int         // turns in a row that ended without an outcome
	queue    []chan bool // waiters, oldest first; true hands them the turn, false releases them (ErrPass)
}

// A Turn is the right to run the work of a key. Its holder records the
// outcome with Share or Pass, and must call End once, typically deferred,
// which publishes the shared value, releases the waiters or hands the turn
// on. A Turn is used by one goroutine.
type Turn[V any] struct {
	t       *Turns[V]
	key     string
	f       *turnFlight[V]
	val     V
	shared  bool
	pass    bool
	passFor time.Duration
	ended   bool
}

// Join joins the flight of key. It returns a Turn when the caller is to run
// the work; otherwise it waits and returns the value another caller
// published, or ErrPass when the caller is to run the work for itself
// without a turn (at once when key is marked pass). When ctx ends first it
// leaves the queue (handing on a turn it was given meanwhile) and returns
// ctx's error. onWait, when not nil, is called once the caller is queued,
// before it blocks.
func (t *Turns[V]) Join(ctx context.Context, key string, onWait func()) (*Turn[V], V, error) {
	var zero V
	t.mu.Lock()
	if until, ok := t.passes[key]; ok {
		if time.Now().Before(until) {
			t.mu.Unlock()
			return nil, zero, ErrPass
		}
		delete(t.passes, key)
	}
	if t.flights == nil {
		t.flights = make(map[string]*turnFlight[V])
	}
	f := t.flights[key]
	if f == nil {
		f = &turnFlight[V]{done: make(chan struct{})}
		t.flights[key] = f
	}
	if !f.running {
		f.running = true
		t.mu.Unlock()
		return &Turn[V]{t: t, key: key, f: f}, zero, nil
	}
	turn := make(chan bool, 1)
	f.queue = append(f.queue, turn)
	t.mu.Unlock()
	if onWait != nil {
		onWait()
	}

	select {
	case <-f.done:
		return nil, f.val, nil
	case run := <-turn:
		if !run {
			return nil, zero, ErrPass
		}
		select {
		case <-f.done:
			// Published while the turn was on its way: no need to run.
			t.mu.Lock()
			f.running = false
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
		} else if len(turn) > 0 && <-turn {
			f.running = false
			t.handOn(key, f)
		}
		return nil, zero, ctx.Err()
	}
}

// Share records v as the outcome every waiter may use: End publishes it.
func (tn *Turn[V]) Share(v V) { tn.val, tn.shared = v, true }

// Pass records that the work answered its own caller whole, with a result
// that cannot be shared by its nature: End releases every waiter at once
// (each returns ErrPass) and marks the key pass for the turn's pass
// duration.
func (tn *Turn[V]) Pass() { tn.pass = true }

// PassFor sets how long End marks the key pass after Pass, or after a
// second failure in a row; d <= 0 (the default) marks nothing, and
// failures then hand the turn on one waiter at a time however many fail.
func (tn *Turn[V]) PassFor(d time.Duration) { tn.passFor = d }

// End ends the turn: it publishes the shared value, ending the flight,
// releases the waiters, or hands the turn on. Calls after the first do
// nothing.
func (tn *Turn[V]) End() {
	if tn.ended {
		return
	}
	tn.ended = true
	t, f := tn.t, tn.f
	t.mu.Lock()
	defer t.mu.Unlock()
	f.running = false
	switch {
	case tn.shared:
		if t.flights[tn.key] == f {
			delete(t.flights, tn.key)
			f.val = tn.val
			f.queue = nil
			close(f.done)
		}
		return
	case !tn.pass:
		f.failures++
		if tn.passFor <= 0 || f.failures < 2 {
			t.handOn(tn.key, f)
			return
		}
	}
	// Passed, or failed twice in a row: nobody waits any longer.
	t.markPass(tn.key, tn.passFor)
	for _, w := range f.queue {
		w <- false
	}
	f.queue = nil
	t.handOn(tn.key, f)
}

// markPass marks key pass for d (nothing when d <= 0), dropping the
// expired marks once their number has doubled. t.mu is held.
func (t *Turns[V]) markPass(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	if t.passes == nil {
		t.passes = make(map[string]time.Time)
	}
	now := time.Now()
	if len(t.passes) >= t.nextSweep {
		for k, until := range t.passes {
			if !now.Before(until) {
				delete(t.passes, k)
			}
		}
		t.nextSweep = max(64, 2*len(t.passes))
	}
	t.passes[key] = now.Add(d)
}

// handOn gives the free turn to the oldest waiter, and drops the flight
// once nobody is left in it. t.mu is held.
func (t *Turns[V]) handOn(key string, f *turnFlight[V]) {
	if !f.running && len(f.queue) > 0 {
		turn := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		f.running = true
		turn <- true
	}
	if !f.running && len(f.queue) == 0 && t.flights[key] == f {
		delete(t.flights, key)
	}
}
