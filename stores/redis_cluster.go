package stores

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-node skip of a Redis Cluster store: a master that failed
// nodeSkipAfter times in a row, by a connection error or a timeout, is
// skipped for nodeSkipFor; then one call probes it (the others are skipped
// for another nodeSkipFor, or until it answers), and a success ends the
// skip. Skipped calls fail at once with a NodeError whose cause is
// ErrNodeSkipped, so once a wedged master is known it costs nothing to the
// calls skipped, and one timeout to the call that probes it every
// nodeSkipFor (a caller's call: there is no background probe), and a
// failover moves its slots to a node that is not skipped. A
// node that has not failed for nodeForget is forgotten: after a failover
// nothing calls the old master, and the store's calls go back to the fast
// path that looks nothing up.
const (
	nodeSkipAfter = 3
	nodeSkipFor   = 500 * time.Millisecond
	nodeForget    = 5 * time.Second
)

// nodeAnswerWindow is how recently some call of a cluster store must have
// succeeded for a failed master to be reported as a NodeError. When no
// call succeeded for that long, every master the store uses is taken to be
// down, and the error is a plain one: the Cache's circuit breaker then
// skips the whole store (see ErrNodeDown).
const nodeAnswerWindow = time.Second

// clusterNodes tracks the masters of a Redis Cluster store that failed
// lately, for the per-node skip, and when a call last succeeded. It is
// safe for concurrent use.
type clusterNodes struct {
	client  *redis.ClusterClient
	lastOK  atomic.Int64 // unix nanos of the last successful call
	failing atomic.Int32 // len(nodes), read without the lock

	mu    sync.Mutex
	nodes map[string]*nodeHealth // the nodes that failed lately, by host:port
	swept int64                  // unix nanos of the last sweep of nodes
}

// nodeHealth is the record of a master that failed lately.
type nodeHealth struct {
	fails     int   // connection errors and timeouts in a row
	skipUntil int64 // unix nanos until which calls skip it; 0: not skipped
	lastFail  int64 // unix nanos of its last failure
}

func newClusterNodes(c *redis.ClusterClient) *clusterNodes {
	return &clusterNodes{client: c, nodes: map[string]*nodeHealth{}}
}

// nodeOf returns the host:port of the master that holds the full key in
// the client's current slot map, or "" when the map is unavailable.
func (cn *clusterNodes) nodeOf(ctx context.Context, full string) string {
	c, err := cn.client.MasterForKey(ctx, full)
	if err != nil {
		return ""
	}
	return c.Options().Addr
}

// admit returns the node that holds full when any node failed lately (""
// otherwise, at no cost), and a NodeError with ErrNodeSkipped when that
// node is skipped (pass it through verdict).
func (cn *clusterNodes) admit(ctx context.Context, full string) (string, error) {
	if cn == nil || cn.failing.Load() == 0 {
		return "", nil
	}
	addr := cn.nodeOf(ctx, full)
	if addr == "" {
		return "", nil
	}
	return addr, cn.admitNode(ctx, addr)
}

// admitNode returns a NodeError with ErrNodeSkipped when addr is skipped.
// When its skip has ended, the caller probes it and the skip of the others
// is renewed.
func (cn *clusterNodes) admitNode(ctx context.Context, addr string) error {
	now := time.Now().UnixNano()
	cn.mu.Lock()
	cn.sweep(now)
	skip := false
	if h := cn.nodes[addr]; h != nil && h.skipUntil != 0 {
		if now < h.skipUntil {
			skip = true
		} else {
			h.skipUntil = now + int64(nodeSkipFor) // this call probes it
		}
	}
	cn.mu.Unlock()
	if !skip {
		return nil
	}
	// While a master is skipped, its slots may be failing over: look for
	// the new master (go-redis reloads at most once per 200ms).
	cn.client.ReloadState(ctx)
	return &NodeError{Node: addr, Err: ErrNodeSkipped}
}

// sweep forgets the nodes that have not failed for nodeForget. cn.mu is
// held.
func (cn *clusterNodes) sweep(now int64) {
	if now-cn.swept < int64(time.Second) {
		return
	}
	cn.swept = now
	for addr, h := range cn.nodes {
		if now-h.lastFail > int64(nodeForget) {
			delete(cn.nodes, addr)
		}
	}
	cn.failing.Store(int32(len(cn.nodes)))
}

// succeeded records a call that the node at addr ("" when unknown) answered.
func (cn *clusterNodes) succeeded(addr string) {
	if cn == nil {
		return
	}
	cn.lastOK.Store(time.Now().UnixNano())
	if addr == "" || cn.failing.Load() == 0 {
		return
	}
	cn.mu.Lock()
	delete(cn.nodes, addr)
	cn.failing.Store(int32(len(cn.nodes)))
	cn.mu.Unlock()
}

// failed records a failure err of the node at addr that says the node did
// not serve a call, and asks for a reload of the slot map: the node may
// have been replaced.
func (cn *clusterNodes) failed(ctx context.Context, addr string, err error) {
	cn.client.ReloadState(ctx)
	now := time.Now().UnixNano()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !nodeUnreachable(err) {
		// The node answered (LOADING, CLUSTERDOWN ...): no reason to skip it.
		delete(cn.nodes, addr)
	} else {
		h := cn.nodes[addr]
		if h == nil {
			h = &nodeHealth{}
			cn.nodes[addr] = h
		}
		h.fails++
		h.lastFail = now
		if h.fails >= nodeSkipAfter {
			h.skipUntil = now + int64(nodeSkipFor)
		}
	}
	cn.failing.Store(int32(len(cn.nodes)))
}

// record records the outcome err of a call that reached the node at addr,
// and reports whether err says that the node did not serve it
// (nodeUnavailable). A call the caller cancelled says nothing of the node.
func (cn *clusterNodes) record(ctx context.Context, addr string, err error) bool {
	switch {
	case nodeUnavailable(ctx, err):
		cn.failed(ctx, addr, err)
		return true
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
	default:
		cn.succeeded(addr) // answered, if only with an error about the data
	}
	return false
}

// verdict returns err, a NodeError or a join of them, when some call of the
// store succeeded within nodeAnswerWindow; otherwise every master is taken
// to be down and it returns a plain error holding the causes, so that the
// Cache's breaker skips the whole store.
func (cn *clusterNodes) verdict(err error) error {
	if time.Since(time.Unix(0, cn.lastOK.Load())) < nodeAnswerWindow {
		return err
	}
	return allNodesDown(err)
}

// allNodesDown turns node errors into a plain error with the same causes.
func allNodesDown(err error) error {
	var causes []error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *NodeError:
			causes = append(causes, &downNode{e})
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		default:
			causes = append(causes, err)
		}
	}
	walk(err)
	if len(causes) == 1 {
		return causes[0]
	}
	return errors.Join(causes...)
}

// downNode is a NodeError reported while every node is down: it reads the
// same but does not wrap ErrNodeDown.
type downNode struct{ ne *NodeError }

func (d *downNode) Error() string { return d.ne.Error() }
func (d *downNode) Unwrap() error { return d.ne.Err }

// done records the outcome of a call on the full key, admitted by admit
// (addr: its master, when admit looked it up), and returns its error: a
// NodeError when it says that the key's master did not serve it (see
// verdict), other errors as they are. A deadline of ctx that cut the call
// short is part of the cause.
func (cn *clusterNodes) done(ctx context.Context, addr, full string, err error) error {
	if cn == nil {
		return err
	}
	if !nodeUnavailable(ctx, err) {
		cn.record(ctx, addr, err)
		return err
	}
	if addr == "" {
		if addr = cn.nodeOf(ctx, full); addr == "" {
			return err // no slot map: no node answers
		}
	}
	cn.failed(ctx, addr, err)
	return cn.verdict(&NodeError{Node: addr, Err: withContextErr(ctx, err)})
}

// withContextErr adds ctx's error to err when ctx ended and err does not
// already say so.
func withContextErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return &ctxCause{ctx: cerr, err: err}
	}
	return err
}

// ctxCause is an error cut short by its context: it wraps both.
type ctxCause struct{ ctx, err error }

func (e *ctxCause) Error() string   { return e.ctx.Error() + " (" + e.err.Error() + ")" }
func (e *ctxCause) Unwrap() []error { return []error{e.ctx, e.err} }

// nodeUnavailable reports whether err, from a call with ctx, says that the
// node did not serve the call: it could not be reached or did not answer
// in time (nodeUnreachable), or it answered that it cannot serve now
// (LOADING, MASTERDOWN, CLUSTERDOWN, TRYAGAIN). A call the caller
// cancelled, a closed client and the server's answers about the data are
// not.
func nodeUnavailable(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, redis.ErrClosed) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	return errors.Is(err, ErrNodeDown) || nodeUnreachable(err) ||
		redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err)
}

// nodeUnreachable reports whether err is a connection that failed or a
// node that did not answer in time.
func nodeUnreachable(err error) bool {
	var opErr *net.OpError
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &opErr) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// keyResult is the outcome of one key of a many-key call on a cluster.
type keyResult struct {
	key  string // the caller's key
	node string // its master, when known
	err  error
}

// manyError builds the error of a many-key call from the keys that failed:
// one NodeError per master whose keys failed because it did not answer
// (their Keys listing them), joined, or a plain error when another error
// happened or when no call succeeded lately (see verdict).
func (cn *clusterNodes) manyError(ctx context.Context, failed []keyResult, full func(string) string) error {
	if len(failed) == 0 {
		return nil
	}
	byNode := map[string]*NodeError{}
	var order []string
	var other []error
	for _, f := range failed {
		if !nodeUnavailable(ctx, f.err) {
			other = append(other, f.err)
			continue
		}
		var skipped *NodeError
		if !errors.As(f.err, &skipped) {
			skipped = nil
		}
		if f.node == "" && skipped != nil {
			f.node = skipped.Node
		}
		if f.node == "" {
			if f.node = cn.nodeOf(ctx, full(f.key)); f.node == "" {
				other = append(other, f.err)
				continue
			}
		}
		ne := byNode[f.node]
		if ne == nil {
			cause := ErrNodeSkipped
			if skipped == nil {
				cn.failed(ctx, f.node, f.err)
				cause = withContextErr(ctx, f.err)
			}
			ne = &NodeError{Node: f.node, Err: cause}
			byNode[f.node] = ne
			order = append(order, f.node)
		}
		ne.Keys = append(ne.Keys, f.key)
	}
	errs := make([]error, 0, len(order)+len(other))
	for _, n := range order {
		errs = append(errs, byNode[n])
	}
	if len(other) > 0 {
		// Not a node failure: the call failed as a whole.
		return allNodesDown(errors.Join(append(errs, other...)...))
	}
	return cn.verdict(errors.Join(errs...))
}
