// Package proverbs holds the Go proverbs (go-proverbs.github.io), which
// stand in for the Zen of Python that the Flask-Cache walkthrough's examples
// quote: a random line that changes on every call, so that a cached one can
// be told from a fresh one.
package proverbs

import (
	"math/rand/v2"
	"sync/atomic"
)

// Proverbs are the Go proverbs (go-proverbs.github.io), which stand in for
// the walkthrough's Zen of Python.
var Proverbs = []string{
	"Don't communicate by sharing memory, share memory by communicating.",
	"Concurrency is not parallelism.",
	"Channels orchestrate; mutexes serialize.",
	"The bigger the interface, the weaker the abstraction.",
	"Make the zero value useful.",
	"interface{} says nothing.",
	"Gofmt's style is no one's favorite, yet gofmt is everyone's favorite.",
	"A little copying is better than a little dependency.",
	"Syscall must always be guarded with build tags.",
	"Cgo must always be guarded with build tags.",
	"Cgo is not Go.",
	"With the unsafe package there are no guarantees.",
	"Clear is better than clever.",
	"Reflection is never clear.",
	"Errors are values.",
	"Don't just check errors, handle them gracefully.",
	"Design the architecture, name the components, document the details.",
	"Documentation is for users.",
	"Don't panic.",
}

var (
	rotate atomic.Bool
	next   atomic.Uint64
)

// Random returns a random Go proverb.
func Random() string {
	if rotate.Load() {
		return Proverbs[(next.Add(1)-1)%uint64(len(Proverbs))]
	}
	return Proverbs[rand.IntN(len(Proverbs))]
}

// Rotate makes Random return the proverbs in turn instead of at random, so
// that two calls in a row never return the same one, until the returned
// function is called. Tests use it to tell a cached proverb from a fresh
// one without relying on chance.
func Rotate() (restore func()) {
	rotate.Store(true)
	return func() { rotate.Store(false) }
}
