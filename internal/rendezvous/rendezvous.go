// Package rendezvous picks the server that holds a key among several with
// rendezvous hashing, also called highest random weight (HRW) hashing
// (Thaler and Ravishankar, "Using Name-Based Mappings to Increase Hit
// Rates", IEEE/ACM Transactions on Networking 6(1), 1998).
//
// Every server gets a score for the key, and the highest score wins. A
// server's score does not depend on the other servers, so when a server
// joins, only the keys it now wins move (about 1/N of them, to it), and when
// one leaves, only its own keys move; the keys of the others stay where they
// were. Scores come from xxhash64 (github.com/cespare/xxhash/v2) of the key
// and of the server's name, combined by a 64-bit finalizer, so every process
// that lists the same names picks the same server, whatever the order of the
// list.
//
// Picking costs one hash of the key plus N multiplications: meant for pools of
// up to a few dozen servers.
//
// # Why our own code
//
// No maintained rendezvous or consistent-hashing module is available to
// this project: github.com/dgryski/go-rendezvous,
// github.com/buraksezer/consistent and github.com/serialx/hashring are not
// among the modules it can use, and the one that is,
// github.com/golang/groupcache's consistenthash, has had no release (only
// untagged commits), hashes with crc32, cannot remove a node, and would
// bring all of groupcache for sixty lines. go-redis's Ring has rendezvous
// hashing of its own, in a package it keeps internal (internal/hashtag).
// The algorithm is short and fully specified by the paper; this package is
// it, over xxhash (already a dependency), with tests that measure how many
// keys move and how evenly they spread.
package rendezvous

import (
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// ErrNoNodes is returned by New when it is given no node names.
var ErrNoNodes = errors.New("rendezvous: no nodes")

// Ring maps keys onto a fixed set of nodes. Build one with New; a change of
// membership is a new Ring. A Ring is immutable and safe for concurrent use.
type Ring struct {
	names  []string
	hashes []uint64
}

// New returns a Ring over the named nodes, for memcached the normalised
// "host:port" of each server: the name is what is hashed, so every process
// of one deployment must spell a server the same way. The order of names
// does not matter. It returns ErrNoNodes for an empty list and an error
// naming the node for an empty or repeated name.
func New(names ...string) (*Ring, error) {
	if len(names) == 0 {
		return nil, ErrNoNodes
	}
	r := &Ring{names: make([]string, len(names)), hashes: make([]uint64, len(names))}
	seen := make(map[string]struct{}, len(names))
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("rendezvous: node %d has an empty name", i)
		}
		if _, dup := seen[n]; dup {
			return nil, fmt.Errorf("rendezvous: node %q is listed twice", n)
		}
		seen[n] = struct{}{}
		r.names[i] = n
		r.hashes[i] = xxhash.Sum64String(n)
	}
	return r, nil
}

// Pick returns the index, in the list given to New, of the node that holds
// key.
func (r *Ring) Pick(key string) int {
	if len(r.hashes) == 1 {
		return 0
	}
	kh := xxhash.Sum64String(key)
	best, bestScore := 0, score(kh, r.hashes[0])
	for i := 1; i < len(r.hashes); i++ {
		s := score(kh, r.hashes[i])
		// A tie (two 64-bit scores equal) is broken by name, not position,
		// so that processes listing the nodes in another order agree.
		if s > bestScore || (s == bestScore && r.names[i] < r.names[best]) {
			best, bestScore = i, s
		}
	}
	return best
}

// Node returns the name of the node that holds key.
func (r *Ring) Node(key string) string { return r.names[r.Pick(key)] }

// Len returns the number of nodes.
func (r *Ring) Len() int { return len(r.names) }

// Names returns a copy of the node names, in the order given to New.
func (r *Ring) Names() []string { return append([]string(nil), r.names...) }

// score combines the hashes of a key and of a node into the node's weight
// for that key. XOR alone would give every node the same order of keys;
// the finalizer of MurmurHash3 (fmix64) spreads each input bit over the
// whole result, so the scores of two nodes for one key are independent.
func score(keyHash, nodeHash uint64) uint64 {
	x := keyHash ^ nodeHash
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
