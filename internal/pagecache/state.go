package pagecache

import (
	"sync"
	"time"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
)

// state is the route caching state shared by every route of a Cache,
// whatever its front end: in-flight misses, running refreshes, page writes
// under way, and the keyings DeletePage must cover.
type state struct {
	mu       sync.Mutex
	flights  flight.Turns[pageFlight] // misses of one page variant in this process
	keyings  map[string]keying
	refreshs sync.Map // variant key -> struct{}
	writes   writes   // page writes and refreshes under way (write.go)

	hooks Hooks
}

// Hooks let tests see what the routes of a cache do. Set them before the
// cache serves requests.
type Hooks struct {
	RefreshDone func()           // a background refresh ended
	OnWait      func()           // a request started waiting for another's miss
	Now         func() time.Time // the clock of the cache's routes (tests)
}

func stateOf(c *core.Cache) *state {
	return core.State(c, "echocache.route", func() *state {
		return &state{keyings: map[string]keying{}}
	})
}

// HooksOf returns the test hooks of c's routes.
func HooksOf(c *core.Cache) *Hooks { return &stateOf(c).hooks }

func (st *state) addKeying(k keying) {
	if k.custom {
		return
	}
	st.mu.Lock()
	st.keyings[k.id()] = k
	st.mu.Unlock()
}

func (st *state) allKeyings() []keying {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.keyings) == 0 {
		return []keying{{ignore: defaultIgnore}}
	}
	out := make([]keying, 0, len(st.keyings))
	for _, k := range st.keyings {
		out = append(out, k)
	}
	return out
}

// pageFlight is what the runner of a page variant's misses shares with
// the requests waiting for it: the entry it stored, and the Vary names of
// its response.
type pageFlight struct {
	entry []byte
	vary  []string
}
