package pagecache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/core"
)

// The write of a stored page, after its response.
//
// A miss streams its response to the client while the capture writer keeps
// a copy; the page is written to the store only once the handler has
// returned, and on a networked store on a goroutine of its own, so that the
// response (which net/http finishes only when the handler returns) never
// waits on the store. An in-process store (memory, null) is written on the
// request's goroutine: it answers at once, in less time than handing the
// write to another goroutine takes. So is a background refresh's page: it
// has no client waiting.
//
// Background writes are bounded: at most MaxPendingWrites at once per
// Cache. A write that finds them all taken is dropped and counted as the
// bypass BypassWriteBacklog: the page is simply not stored this time. Each
// runs under a context of its own, not the request's (which ends with the
// response): every store call in it is bounded by the Cache's
// StoreTimeout, and the whole write by writeTimeout.
//
// While a page's background write is under way, lookups in this process
// read its records from the write (writes.page) before they ask the store:
// a request that follows a response finds the page whether or not the
// store holds it yet, so it is a hit (or stale, or expired, by the same
// rules), never a second run of the handler. The miss's cross-process lock
// is held until the write has ended too, so that other processes wait for
// the store to hold the page (they poll it) rather than run the handler
// again.
//
// Two writes of one key in this process land in the order their pages were
// computed: a write waits for the earlier writes of its key to end, and
// lookups read the newer record meanwhile. A miss that stores nothing lets
// go of its cross-process lock after its response too, in the background
// on a networked store.
//
// Invalidations (DeletePage, DeletePageKey, InvalidateTag, Clear) are
// ordered with the writes: a page whose handler began before an
// invalidation is not written after it (counted as BypassInvalidated),
// and an invalidation waits for the writes under way to end before it
// deletes, so that no write lands after the delete. The writes of other
// processes are not ordered with it: tags and Clear are versioned, and
// DeletePage deletes a second time, after the writes under way elsewhere
// have landed (invalidate.go). Flush waits for every write, background
// refresh and second delete under way, for a clean shutdown.

// MaxPendingWrites is how many page writes to a networked store a Cache
// runs in the background at once (echocache.MaxPendingWrites).
const MaxPendingWrites = 64

// writeTimeout bounds one background write as a whole: its store write,
// the removal of the keys when it fails, and the release of the miss's
// cross-process lock. Each of those calls is bounded by StoreTimeout on
// its own; this is a backstop.
const writeTimeout = 10 * time.Second

// writes are the page writes and background refreshes of a Cache that are
// under way. Its zero value is ready to use.
type writes struct {
	epoch  atomic.Uint64 // invalidations so far; moves under mu
	npages atomic.Int64  // len(pages), read by lookups without the lock

	mu      sync.Mutex
	pending map[*task]bool         // true for a write, false for a refresh or a release
	async   int                    // background tasks in pending
	pages   map[string]pendingPage // the newest record being written, by key
}

// task is one write, refresh or release under way; done is closed when it
// ends.
type task struct {
	done chan struct{}
	// follows are the writes under way of the same keys, begun before this
	// one: it writes once they have ended, so that the store keeps the
	// newest page whichever write would have been quicker.
	follows []*task
}

// pendingPage is a record a write under way writes, readable by lookups.
type pendingPage struct {
	rec []byte
	t   *task
}

// begin registers pw, a write of a page whose handler began at pw.epoch.
// It returns nil and the bypass reason when the write must not be made: an
// invalidation came since, or (a background write) MaxPendingWrites
// background tasks are under way. The records of a write to a networked
// store are readable with page until end.
func (w *writes) begin(pw *pageWrite) (*task, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.epoch.Load() != pw.epoch:
		return nil, BypassInvalidated
	case !pw.inline && w.async >= MaxPendingWrites:
		return nil, BypassWriteBacklog
	}
	t := w.add(true, !pw.inline)
	if pw.visible {
		if w.pages == nil {
			w.pages = make(map[string]pendingPage)
		}
		for k, v := range pw.items {
			if prev, ok := w.pages[k]; ok && !slices.Contains(t.follows, prev.t) {
				t.follows = append(t.follows, prev.t)
			}
			w.pages[k] = pendingPage{rec: v, t: t} // the newer page
		}
		w.npages.Store(int64(len(w.pages)))
	}
	return t, ""
}

// page returns the record a write under way writes under key, or nil.
func (w *writes) page(key string) []byte {
	if w.npages.Load() == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pages[key].rec
}

// beginBackground registers a background task that Flush waits for and
// invalidations do not: a refresh, or a second delete (invalidate.go).
func (w *writes) beginBackground() *task {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.add(false, false)
}

// beginRelease registers a background release of what a miss that stored
// nothing held, or returns nil when MaxPendingWrites background tasks are
// under way.
func (w *writes) beginRelease() *task {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.async >= MaxPendingWrites {
		return nil
	}
	return w.add(true, true) // waited for with the writes
}

func (w *writes) add(write, async bool) *task {
	if w.pending == nil {
		w.pending = make(map[*task]bool)
	}
	t := &task{done: make(chan struct{})}
	w.pending[t] = write
	if async {
		w.async++
	}
	return t
}

// end ends t, which pw began (nil for a refresh or a release) in the
// background or not (async).
func (w *writes) end(t *task, pw *pageWrite, async bool) {
	w.mu.Lock()
	delete(w.pending, t)
	if async {
		w.async--
	}
	if pw != nil && pw.visible {
		for k := range pw.items {
			if cur, ok := w.pages[k]; ok && cur.t == t {
				delete(w.pages, k) // unless a later write replaced it
			}
		}
		w.npages.Store(int64(len(w.pages)))
	}
	w.mu.Unlock()
	close(t.done)
}

// wait waits for the tasks under way (the writes alone with writesOnly)
// to end, or for ctx to end. With invalidate it first moves the epoch on,
// in the same critical section, so that no write of a page rendered
// before the call begins after it.
func (w *writes) wait(ctx context.Context, writesOnly, invalidate bool) error {
	w.mu.Lock()
	if invalidate {
		w.epoch.Add(1)
	}
	var under []*task
	for t, write := range w.pending {
		if write || !writesOnly {
			under = append(under, t)
		}
	}
	w.mu.Unlock()
	for _, t := range under {
		select {
		case <-t.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pageWrite is one page's write.
type pageWrite struct {
	items map[string][]byte
	ttl   time.Duration
	epoch uint64 // writes.epoch when the handler began
	// inline: write on the caller's goroutine (an in-process store, a
	// background refresh).
	inline bool
	// visible: lookups read the records until the write ends (a networked
	// store).
	visible bool
	// after is what the miss lets go of once the write has ended, whatever
	// became of it: the cross-process lock.
	after []func()
}

func (pw *pageWrite) finish() {
	for _, f := range pw.after {
		f()
	}
}

// store writes a page (see above). A failed write has been counted and
// logged by the core.
func (m *Engine) store(pw *pageWrite) {
	w := &m.st.writes
	t, reason := w.begin(pw)
	if t == nil {
		m.cache.CountBypass(reason)
		if reason == BypassWriteBacklog {
			m.cache.Logf("%d page writes to the store are under way; a page was sent and not stored (%s)", MaxPendingWrites, BypassWriteBacklog)
		}
		m.release(pw.after)
		return
	}
	if pw.inline {
		m.write(context.Background(), t, pw)
		pw.finish()
		w.end(t, pw, false)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		m.write(ctx, t, pw)
		// The lock goes before the records stop being readable here: a
		// process that polls for the page finds it in the store.
		pw.finish()
		w.end(t, pw, true)
	}()
}

func (m *Engine) write(ctx context.Context, t *task, pw *pageWrite) {
	for _, prev := range t.follows {
		select {
		case <-prev.done:
		case <-ctx.Done():
			return
		}
	}
	if err := m.cache.SetMany(ctx, pw.items, pw.ttl); err == nil {
		m.cache.Counters().Stores.Add(1)
	}
}

// release lets go of what a miss held (the cross-process lock) once its
// response is sent: on a networked store in the background, so that the
// response does not wait for it, unless MaxPendingWrites background tasks
// are under way (then the lock is left to expire, after LockTimeout).
func (m *Engine) release(fns []func()) {
	if len(fns) == 0 {
		return
	}
	if inProcess(m.cache) {
		for _, f := range fns {
			f()
		}
		return
	}
	w := &m.st.writes
	t := w.beginRelease()
	if t == nil {
		return
	}
	go func() {
		defer w.end(t, nil, true)
		for _, f := range fns {
			f()
		}
	}()
}

// inProcess reports whether c's store lives in the process, where a write
// answers at once.
func inProcess(c *core.Cache) bool { return !c.Verifies() }

// handoff is what a miss lets go of when it ends (the flight's hold, the
// cross-process lock), unless a page write takes them over, to let go of
// once the page is written.
type handoff struct{ fns []func() }

func (h *handoff) add(f func()) { h.fns = append(h.fns, f) }

// take returns what h holds and empties it.
func (h *handoff) take() []func() {
	fns := h.fns
	h.fns = nil
	return fns
}

// Flush waits until the page writes, background refreshes and second
// deletes (DeletePages) of c under way when it is called have ended, or
// ctx ends (then it returns ctx's error). echocache.Cache.Flush documents it.
func Flush(ctx context.Context, c *core.Cache) error {
	return stateOf(c).writes.wait(ctx, false, false)
}

// FlushWrites is Flush without the background refreshes: it waits for
// the page writes (and the releases of locks) under way.
func FlushWrites(ctx context.Context, c *core.Cache) error {
	return stateOf(c).writes.wait(ctx, true, false)
}

// Invalidate runs drop, an invalidation of pages (a delete, a new tag
// version, a Clear), ordered with the page writes: the writes of pages
// whose handlers began before the call are not made after it, and those
// under way end before drop runs.
func Invalidate(ctx context.Context, c *core.Cache, drop func() error) error {
	if err := stateOf(c).writes.wait(ctx, true, true); err != nil {
		return err
	}
	return drop()
}
