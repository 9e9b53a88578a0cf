package echocache

import (
	"fmt"
	"strings"
	"sync"

	"github.com/echocache/echocache/internal/core"
)

// typedNames records the Function keys and Memoize names of one Cache.
type typedNames struct {
	mu  sync.Mutex
	set map[string]bool
}

func registerName(c *Cache, name, what string) {
	n := core.State(c.core(), "typed.names", func() *typedNames { return &typedNames{set: map[string]bool{}} })
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.set[name] {
		panic(fmt.Sprintf("echocache: %s %q is already used on this Cache", what, strings.SplitN(name, ":", 2)[1]))
	}
	n.set[name] = true
}
