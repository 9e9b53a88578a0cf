package stores

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/echocache/echocache/internal/mcbin"
)

// mcNode is one memcached server as the store talks to it, over memcached's
// binary protocol (binaryNode: internal/mcbin, plain or with SASL) or its
// ASCII protocol (asciiNode: gomemcache, plain or with -Y authentication).
// Items are mcbin.Items whatever the protocol.
//
// Errors are mapped at this edge: the answers of a server that is up (a
// miss, a key that exists, a value too large …) are the errMC* sentinels
// below and ErrTooLarge, which [mcAnswered] recognises; bad credentials
// wrap ErrAuth; anything else means the server could not be talked to.
type mcNode interface {
	// get reads one item; errMCMiss when it is absent.
	get(ctx context.Context, key string) (mcbin.Item, error)
	// getMulti reads keys in one round trip into items (as long as keys):
	// the item of keys[i], when the server holds it, goes to items[i]; a
	// miss leaves items[i] as it was. Nothing may use keys or items once
	// it has returned, not even a round trip left going on in the
	// background: the caller reuses them. (A slice to fill rather than a
	// callback: what a call through an interface captures escapes, and a
	// hit would cost allocations.)
	getMulti(ctx context.Context, keys []string, items []mcbin.Item) error
	// set stores it. With it.CAS set it is a compare-and-swap: errMCExists
	// when the item changed since, errMCMiss when it is gone.
	set(ctx context.Context, it mcbin.Item) error
	// setMulti stores every item (one round trip on the binary protocol).
	// When it fails, some items may be stored.
	setMulti(ctx context.Context, items []mcbin.Item) error
	// add stores it only if its key is absent and reports whether it did.
	add(ctx context.Context, it mcbin.Item) (bool, error)
	// deleteMulti removes keys; absent keys are not an error.
	deleteMulti(ctx context.Context, keys []string) error
	// incr adds delta to the counter under key, creating it holding
	// initial, without expiry, when it is absent, and returns the new
	// value. memcached's counters are unsigned 64-bit and wrap around: it
	// serves the store's own counters (namespace generations), never a
	// caller's Incr (memcached_incr.go).
	incr(ctx context.Context, key string, delta, initial uint64) (uint64, error)
	// probe checks the server on a new connection (dial, authentication,
	// a version request), after dropping the idle ones: the health check
	// of a server skipped by its circuit breaker.
	probe(ctx context.Context) error
	// close closes the idle connections; the node is not used again.
	close()
}

// The answers of a server that is up, as the nodes report them.
var (
	errMCMiss       = errors.New("memcached: no such item")
	errMCExists     = errors.New("memcached: the item exists or changed since it was read")
	errMCNotStored  = errors.New("memcached: item not stored")
	errMCNonNumeric = errors.New("memcached: incr or decr of a value that is not a number")
	errMCNoMemory   = errors.New("memcached: out of memory storing the item")
)

// mcAnswered reports whether err is an answer of a server that is up: a
// status the store expects (a miss, a value too large, a key that exists
// …). Such errors never count against a server's health.
func mcAnswered(err error) bool {
	for _, a := range [...]error{errMCMiss, errMCExists, errMCNotStored, errMCNonNumeric, errMCNoMemory, ErrTooLarge} {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}

// binaryNode is a server spoken to over memcached's binary protocol, with
// SASL PLAIN when the client has credentials.
type binaryNode struct{ c *mcbin.Client }

var _ mcNode = binaryNode{}

// binaryErr maps an mcbin error to the store's.
func binaryErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mcbin.ErrNotFound):
		return errMCMiss
	case errors.Is(err, mcbin.ErrExists):
		return errMCExists
	case errors.Is(err, mcbin.ErrNotStored):
		return errMCNotStored
	case errors.Is(err, mcbin.ErrNonNumeric):
		return errMCNonNumeric
	case errors.Is(err, mcbin.ErrNoMemory):
		return errMCNoMemory
	case errors.Is(err, mcbin.ErrTooLarge):
		return fmt.Errorf("%w: the server refused the item (its item size limit, memcached -I, is below max_item_size)", ErrTooLarge)
	case errors.Is(err, mcbin.ErrAuth):
		// mcbin's message names the server and the user, never the password.
		return fmt.Errorf("%w: %s", ErrAuth, strings.TrimPrefix(err.Error(), mcbin.ErrAuth.Error()+": "))
	}
	return err
}

func (n binaryNode) get(ctx context.Context, key string) (mcbin.Item, error) {
	it, err := n.c.Get(ctx, key)
	return it, binaryErr(err)
}

func (n binaryNode) getMulti(ctx context.Context, keys []string, items []mcbin.Item) error {
	return binaryErr(n.c.GetMulti(ctx, keys, func(i int, it mcbin.Item) { items[i] = it }))
}

func (n binaryNode) set(ctx context.Context, it mcbin.Item) error {
	_, err := n.c.Set(ctx, it)
	return binaryErr(err)
}

func (n binaryNode) setMulti(ctx context.Context, items []mcbin.Item) error {
	return binaryErr(n.c.SetMulti(ctx, items))
}

func (n binaryNode) add(ctx context.Context, it mcbin.Item) (bool, error) {
	_, err := n.c.Add(ctx, it)
	if errors.Is(err, mcbin.ErrExists) {
		return false, nil
	}
	return err == nil, binaryErr(err)
}

func (n binaryNode) deleteMulti(ctx context.Context, keys []string) error {
	if len(keys) == 1 {
		if err := binaryErr(n.c.Delete(ctx, keys[0])); !errors.Is(err, errMCMiss) {
			return err
		}
		return nil
	}
	return binaryErr(n.c.DeleteMulti(ctx, keys))
}

// incr creates an absent counter in the same request: memcached's binary
// Increment takes the initial value and the expiration of a counter it
// creates (doc/protocol-binary.xml §4.5). Of two clients creating it at
// once, memcached tells one "not stored" (it adds the item); that one
// increments again, the counter being there now.
func (n binaryNode) incr(ctx context.Context, key string, delta, initial uint64) (uint64, error) {
	for range 3 {
		v, err := n.c.Incr(ctx, key, delta, initial, 0)
		if err = binaryErr(err); !errors.Is(err, errMCNotStored) {
			return v, err
		}
	}
	return 0, fmt.Errorf("stores: memcached: counter %s keeps disappearing", key)
}

func (n binaryNode) probe(ctx context.Context) error {
	n.c.CloseIdle()
	_, err := n.c.Version(ctx)
	return binaryErr(err)
}

func (n binaryNode) close() { _ = n.c.Close() }
