package stores

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

func init() {
	Register("null", openNull)
}

// Null is a store that keeps nothing, Flask-Cache's default backend: every
// Get misses and every write succeeds. Use it to turn caching off without
// changing code. It is safe for concurrent use.
//
// Add always reports true (as if the key had been absent), so callers that
// use Add as a lock never wait, and Incr returns delta, as on an absent key.
//
// Like every store, Null fails with the context's error when ctx is already
// done, and with ErrClosed after Close.
type Null struct {
	closed atomic.Bool
}

// NewNull returns a store that keeps nothing (URL: null://).
func NewNull() Store { return &Null{} }

// openNull accepts prefix and default_ttl, which have no effect, so that a
// URL can switch to null:// by changing its scheme alone.
func openNull(_ context.Context, u *url.URL) (Store, error) {
	if err := noLocation(u); err != nil {
		return nil, err
	}
	p := NewParams(u)
	p.String("prefix", "")
	p.Duration("default_ttl", 0)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return NewNull(), nil
}

// noLocation refuses a host, path or user in the URL of an in-process store.
func noLocation(u *url.URL) error {
	if u.User != nil || u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return fmt.Errorf("stores: %s URL takes no host, path or user (want %s://?param=value)", u.Scheme, u.Scheme)
	}
	return nil
}

func (n *Null) check(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Get always misses.
func (n *Null) Get(ctx context.Context, key string) ([]byte, error) {
	if err := n.check(ctx); err != nil {
		return nil, err
	}
	return nil, ErrNotFound
}

// Set does nothing.
func (n *Null) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return n.check(ctx)
}

// Add does nothing and reports true.
func (n *Null) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := n.check(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Delete does nothing.
func (n *Null) Delete(ctx context.Context, key string) error { return n.check(ctx) }

// GetMany returns an empty map.
func (n *Null) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := n.check(ctx); err != nil {
		return nil, err
	}
	return map[string][]byte{}, nil
}

// SetMany does nothing.
func (n *Null) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return n.check(ctx)
}

// DeleteMany does nothing.
func (n *Null) DeleteMany(ctx context.Context, keys []string) error { return n.check(ctx) }

// Incr returns delta.
func (n *Null) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := n.check(ctx); err != nil {
		return 0, err
	}
	return delta, nil
}

// Clear does nothing.
func (n *Null) Clear(ctx context.Context) error { return n.check(ctx) }

// Close makes later calls fail with ErrClosed. It is safe to call twice.
func (n *Null) Close() error {
	n.closed.Store(true)
	return nil
}
