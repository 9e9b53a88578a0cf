package storetest

import (
	"crypto/rand"
	"encoding/hex"
)

// Incompressible returns n random hex digits: text that S2, which an
// echocache.Cache compresses entries with, cannot shrink by the eighth it
// asks of an entry, so that the value stays about n bytes in a store
// behind such a Cache. Tests of values too large for a store, or of writes
// cut on the network, need that.
func Incompressible(n int) []byte {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return []byte(hex.EncodeToString(b))[:n]
}
