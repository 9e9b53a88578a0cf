package echocache

import (
	"sync"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/flight"
)

// routeState is the route caching state shared by every middleware of a
// Cache: in-flight misses, running refreshes, and the keyings DeletePage
// must cover.
type routeState struct {
	mu       sync.Mutex
	flights  flight.Turns[pageFlight] // misses of one page variant in this process
	keyings  map[string]keying
	refreshs sync.Map // variant key -> struct{}

	refreshDone func() // tests: called when a background refresh ends
	onWait      func() // tests: called when a request starts waiting for another's miss
}

func routeStateOf(c *Cache) *routeState {
	return core.State(c.core(), "echocache.route", func() *routeState {
		return &routeState{keyings: map[string]keying{}}
	})
}

func (st *routeState) addKeying(k keying) {
	if k.custom {
		return
	}
	st.mu.Lock()
	st.keyings[k.id()] = k
	st.mu.Unlock()
}

func (st *routeState) allKeyings() []keying {
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
