package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/bradfitz/gomemcache/memcache"
	"golang.org/x/sync/errgroup"

	"github.com/echocache/echocache/internal/mcbin"
)

// asciiNode is a server spoken to over memcached's ASCII protocol through
// gomemcache, one client per server (so that each server's idle
// connections can be dropped alone), with memcached's ASCII authentication
// (-Y) when the store has credentials: the binary protocol is not allowed
// on such a server.
//
// gomemcache takes no context: every call runs through bounded, which
// returns when the context ends and leaves the round trip to finish (or
// time out) in the background. gomemcache reuses idle connections without
// checking them, so a call that finds its connection closed by the server
// (a restart) drops every idle connection of the server and, when it is
// idempotent, runs once more on a new one.
type asciiNode struct{ c *memcache.Client }

var _ mcNode = asciiNode{}

// manyParallel bounds the concurrent requests of an ASCII setMulti or
// deleteMulti (gomemcache has no pipelined writes).
const manyParallel = 8

// asciiErr maps a gomemcache error to the store's.
func asciiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return errMCMiss
	case errors.Is(err, memcache.ErrCASConflict):
		return errMCExists
	case errors.Is(err, memcache.ErrNotStored):
		return errMCNotStored
	case errors.Is(err, ErrAuth):
		return err
	}
	// Answers gomemcache passes on as text: "SERVER_ERROR object too large
	// for cache", "SERVER_ERROR out of memory storing object", "CLIENT_ERROR
	// cannot increment or decrement non-numeric value".
	switch msg := err.Error(); {
	case strings.Contains(msg, "CLIENT_ERROR unauthenticated"):
		return fmt.Errorf("%w: the server requires ASCII authentication (memcached -Y); give the credentials as memcached://user:pass@host", ErrAuth)
	case strings.Contains(msg, "too large"):
		return fmt.Errorf("%w (%v)", ErrTooLarge, err)
	case strings.Contains(msg, "non-numeric"):
		return errMCNonNumeric
	case strings.Contains(msg, "out of memory"):
		return errMCNoMemory
	}
	return err
}

// connLost reports whether err says the server closed the connection.
func connLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// asciiCall runs op on n's client within ctx (see bounded). When op finds
// its connection closed by the server, every idle connection predates the
// outage: they are dropped, and an idempotent op runs once more.
func asciiCall[T any](ctx context.Context, n asciiNode, idempotent bool, op func(c *memcache.Client) (T, error)) (T, error) {
	return bounded(ctx, func() (T, error) {
		v, err := op(n.c)
		if err != nil && connLost(err) {
			_ = n.c.Close() // the client stays usable; only its idle connections go
			if idempotent {
				v, err = op(n.c)
			}
		}
		return v, asciiErr(err)
	})
}

func (n asciiNode) get(ctx context.Context, key string) (mcbin.Item, error) {
	return asciiCall(ctx, n, true, func(c *memcache.Client) (mcbin.Item, error) {
		it, err := c.Get(key)
		if err != nil {
			return mcbin.Item{}, err
		}
		return mcbin.Item{Key: key, Value: it.Value, Flags: it.Flags, CAS: it.CasID}, nil
	})
}

func (n asciiNode) getMulti(ctx context.Context, keys []string, items []mcbin.Item) error {
	// The round trip may go on after getMulti has returned (bounded), and
	// the caller reuses keys then (readScratch): it gets names of its own.
	own := slices.Clone(keys)
	got, err := asciiCall(ctx, n, true, func(c *memcache.Client) (map[string]*memcache.Item, error) {
		return c.GetMulti(own)
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		if it, ok := got[k]; ok {
			items[i] = mcbin.Item{Key: k, Value: it.Value, Flags: it.Flags, CAS: it.CasID}
		}
	}
	return nil
}

func gomemcacheItem(it mcbin.Item) *memcache.Item {
	return &memcache.Item{Key: it.Key, Value: it.Value, Flags: it.Flags, Expiration: int32(it.Expiration), CasID: it.CAS}
}

func (n asciiNode) set(ctx context.Context, it mcbin.Item) error {
	_, err := asciiCall(ctx, n, true, func(c *memcache.Client) (struct{}, error) {
		if it.CAS == 0 {
			return struct{}{}, c.Set(gomemcacheItem(it))
		}
		err := c.CompareAndSwap(gomemcacheItem(it))
		if errors.Is(err, memcache.ErrNotStored) {
			err = memcache.ErrCacheMiss // cas of an item that is gone
		}
		return struct{}{}, err
	})
	return err
}

func (n asciiNode) setMulti(ctx context.Context, items []mcbin.Item) error {
	if len(items) == 1 {
		return n.set(ctx, items[0])
	}
	var g errgroup.Group
	g.SetLimit(manyParallel)
	for _, it := range items {
		g.Go(func() error { return n.set(ctx, it) })
	}
	return g.Wait()
}

func (n asciiNode) add(ctx context.Context, it mcbin.Item) (bool, error) {
	err := n.addItem(ctx, it)
	if errors.Is(err, errMCNotStored) {
		return false, nil
	}
	return err == nil, err
}

func (n asciiNode) addItem(ctx context.Context, it mcbin.Item) error {
	_, err := asciiCall(ctx, n, true, func(c *memcache.Client) (struct{}, error) {
		return struct{}{}, c.Add(gomemcacheItem(it))
	})
	return err
}

func (n asciiNode) deleteMulti(ctx context.Context, keys []string) error {
	del := func(k string) error {
		_, err := asciiCall(ctx, n, true, func(c *memcache.Client) (struct{}, error) {
			return struct{}{}, c.Delete(k)
		})
		if errors.Is(err, errMCMiss) {
			return nil
		}
		return err
	}
	if len(keys) == 1 {
		return del(keys[0])
	}
	var g errgroup.Group
	g.SetLimit(manyParallel)
	for _, k := range keys {
		g.Go(func() error { return del(k) })
	}
	return g.Wait()
}

// incr increments, or adds the counter when it is missing (the ASCII incr
// does not create), and increments again when another client added it in
// between.
func (n asciiNode) incr(ctx context.Context, key string, delta, initial uint64) (uint64, error) {
	for range 3 {
		v, err := asciiCall(ctx, n, false, func(c *memcache.Client) (uint64, error) { return c.Increment(key, delta) })
		if !errors.Is(err, errMCMiss) {
			return v, err
		}
		err = n.addItem(ctx, mcbin.Item{Key: key, Value: strconv.AppendUint(nil, initial, 10)})
		if !errors.Is(err, errMCNotStored) {
			return initial, err
		}
	}
	return 0, fmt.Errorf("stores: memcached: counter %s keeps disappearing", key)
}

func (n asciiNode) probe(ctx context.Context) error {
	_ = n.c.Close()
	_, err := asciiCall(ctx, n, false, func(c *memcache.Client) (struct{}, error) { return struct{}{}, c.Ping() })
	return err
}

func (n asciiNode) close() { _ = n.c.Close() }

// bounded runs op and returns its result, or the context's error as soon as
// ctx ends: gomemcache takes no context, so the round trip under way goes
// on in the background until it completes or MemcachedConfig.Timeout (per
// connect, read and write) ends it, and its result is dropped. A context
// without Done (context.Background) costs nothing extra.
func bounded[T any](ctx context.Context, op func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return op()
	}
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := op()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
