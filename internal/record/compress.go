package record

import (
	"errors"

	"github.com/klauspost/compress/s2"
)

// A compressed record (kind Compressed, version 1) holds another record,
// whole (its header and checksum included), as one S2 block
// (github.com/klauspost/compress/s2, block format): a uvarint of the
// decoded length, then the compressed bytes. Its own checksum covers the
// compressed bytes, so a damaged record is refused before it is decoded;
// the record inside keeps its own, which its reader checks as usual.
//
// S2 rather than zstd: a cache decodes an entry on every hit and encodes
// it once per miss, and S2 decodes HTML pages two to five times faster
// than zstd (a 64 KiB page: 3.5× smaller instead of zstd's 5.2×), without
// state, and says its decoded length in its first bytes, before anything
// is allocated.
const compressedVersion = 1

// Errors of Decompress, besides Open's.
var (
	// ErrExpands is returned for a compressed record that would decode
	// to more bytes than its reader allows.
	ErrExpands = errors.New("record: compressed record decodes to more than the limit")
	// ErrCompressed is returned for a compressed record whose content
	// does not decode, or does not decode to a record.
	ErrCompressed = errors.New("record: compressed record does not decode")
)

// Compress returns rec, a record, compressed into a record of kind
// Compressed, or rec itself when compressing it saves less than an
// eighth of its length (data already compressed, such as images or
// gzipped bodies), or when rec is not a record (a counter's decimal text)
// or is compressed already. The result is a new slice; rec is not
// modified.
func Compress(rec []byte) []byte {
	n := s2.MaxEncodedLen(len(rec))
	if n < 0 || len(rec) < Overhead || rec[0] != Magic[0] || rec[1] != Magic[1] || Kind(rec[2]) == Compressed {
		return rec
	}
	b := Begin(make([]byte, 0, HeaderLen+n+TrailerLen), Compressed, compressedVersion)
	z := s2.EncodeBetter(b[HeaderLen:HeaderLen+n], rec)
	if HeaderLen+len(z)+TrailerLen > len(rec)-len(rec)/8 {
		return rec
	}
	return Seal(b[:HeaderLen+len(z)])
}

// Decompress returns the record that rec holds when rec is a compressed
// record, and rec itself otherwise. A compressed record must have a
// valid checksum and decode to a record of another kind of at most limit
// bytes; otherwise Decompress returns ErrExpands, ErrCompressed or one of
// Open's errors, having allocated nothing larger than limit. It never
// panics, whatever rec holds, and never returns part of a record.
func Decompress(rec []byte, limit int) ([]byte, error) {
	if !Is(rec, Compressed) {
		return rec, nil
	}
	z, err := Open(rec, Compressed, compressedVersion, true)
	if err != nil {
		return nil, err
	}
	n, err := s2.DecodedLen(z)
	switch {
	case err != nil || n < Overhead:
		return nil, ErrCompressed
	case n > limit:
		return nil, ErrExpands
	}
	out, err := s2.Decode(make([]byte, n), z)
	if err != nil || len(out) != n || out[0] != Magic[0] || out[1] != Magic[1] || Kind(out[2]) == Compressed {
		return nil, ErrCompressed
	}
	return out, nil
}
