package echocache

import (
	"context"

	"github.com/echocache/echocache/internal/pagecache"
)

// MaxPendingWrites is how many page writes to a networked store (redis,
// memcached, file) a Cache runs at once in the background. A cached route
// sends a missed page's response first and writes the page after, on a
// goroutine of its own, so that the client never waits on the store; when
// MaxPendingWrites writes are under way, the next page is not stored
// (counted as BypassWriteBacklog). Each write runs under a context of its
// own, each of its store calls bounded by Config.StoreTimeout. A store in
// the process (memory, null) is written before the handler returns: it
// answers at once.
//
// Until its write has ended, the requests for the page in the same process
// get it from the miss that computed it (they are hits), and, with
// RouteConfig.LockTimeout, other processes wait for the write rather than
// compute the page again.
const MaxPendingWrites = pagecache.MaxPendingWrites

// Flush waits until the page writes, background refreshes
// (RouteConfig.StaleWhileRevalidate) and second deletes of DeletePage and
// DeletePageKey (up to 2×StoreTimeout after the call) that are under way
// when it is called have ended, or until ctx ends, and then returns ctx's
// error. Call it at
// shutdown, after the server has stopped taking requests, so that the
// pages of the last misses reach the store:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	_ = e.Shutdown(ctx)   // no new requests; handlers done
//	_ = cache.Flush(ctx)  // their pages written
//	_ = store.Close()
//
// Tests use it too, to read from the store what a request just stored.
// Without Flush nothing leaks: a write ends by itself within its store
// calls' timeouts, a second delete within 3×StoreTimeout; Flush only
// waits for them.
func (c *Cache) Flush(ctx context.Context) error {
	return pagecache.Flush(ctx, c.core())
}
