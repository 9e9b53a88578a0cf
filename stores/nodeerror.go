package stores

import "errors"

// ErrNodeDown is wrapped by the errors of a store that spreads its keys over
// several servers (a memcached pool, a Redis Cluster) when the server that
// holds a key failed, or is skipped after recent failures, while the other
// servers may still answer: the call failed for that server's keys only.
// echocache's circuit breaker does not count such errors against the whole
// store, so keys on healthy servers keep being served.
var ErrNodeDown = errors.New("stores: a server of the store is unavailable")

// ErrNodeSkipped is the cause of a [NodeError] returned without contacting
// a server that failed recently (the store's per-server circuit breaker).
var ErrNodeSkipped = errors.New("stores: server skipped after recent failures")

// NodeError reports the failure of one server (Node, its host:port) of a
// store spread over several servers. errors.Is(err, ErrNodeDown) holds for
// it, and Unwrap also yields the cause (io.EOF, context.DeadlineExceeded,
// [ErrNodeSkipped], ...).
//
// For GetMany, SetMany and DeleteMany, Keys lists the keys of the call that
// the failed server holds; the call's other keys were served, and GetMany
// returns their values in its map together with the error. Several failed
// servers are reported as an errors.Join of NodeErrors.
//
// A store returns a NodeError only while some of its servers answer; when
// every server fails it returns a plain error, so that the caller's circuit
// breaker stops calling it.
type NodeError struct {
	Node string   // host:port of the failed server
	Keys []string // for many-key calls, the keys held by Node; nil otherwise
	Err  error    // the cause
}

// Error returns "stores: server NODE: CAUSE".
func (e *NodeError) Error() string {
	msg := "stores: server " + e.Node + ": "
	if e.Err == nil {
		return msg + "unavailable"
	}
	return msg + e.Err.Error()
}

// Unwrap returns ErrNodeDown and the cause.
func (e *NodeError) Unwrap() []error { return []error{ErrNodeDown, e.Err} }
