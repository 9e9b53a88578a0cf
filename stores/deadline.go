package stores

import "github.com/echocache/echocache/internal/deadline"

// The stores whose calls end by their context's deadline without waiting
// for its Done channel, so that echocache gives them a deadline without a
// timer (internal/deadline): a redis store on a single server with a
// client it built (go-redis with ContextTimeoutEnabled sets the deadline
// on its sockets, and on the dial), and a memcached store over the binary
// protocol (internal/mcbin does the same). A cluster or sentinel client
// retries and looks nodes up in loops that only Done ends early, gomemcache
// takes no context, and a client handed in may not set
// ContextTimeoutEnabled: those get a timer. A local tier is what its
// shared store is: it adds only in-process work in front of it.
func init() {
	deadline.Register(func(s any) bool {
		switch s := s.(type) {
		case *Redis:
			return s.timerless
		case *Memcached:
			return s.binary
		case *LocalTier:
			return deadline.Honoured(s.shared)
		}
		return false
	})
}
