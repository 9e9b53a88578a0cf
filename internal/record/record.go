// Package record is the one framing of every record the echocache packages
// write to a store or a file, and its one integrity check:
//
//	offset  size  field
//	0       2     magic "EC"
//	2       1     kind (Page, Value, Fragment, FileEntry)
//	3       1     format version of that kind
//	4       n     payload, laid out by the kind's own package
//	4+n     4     CRC-32C (Castagnoli) of every byte before it, little-endian
//
// A record that is too short, of another kind or version, or whose
// checksum does not match does not open: its reader treats it as a miss.
// Bytes an in-process store hands back never left the process; a reader
// may skip the checksum for them (verify false), never the other checks.
//
// A record can be stored compressed: wrapped whole in a record of kind
// Compressed (compress.go), which its reader opens first, so that a
// reader of any kind reads compressed and plain records alike.
//
// Integers used as counters (Cache.Incr) are the one thing stored
// unframed: the stores' own atomic increments need plain decimal text.
package record

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Magic starts every record.
const Magic = "EC"

// HeaderLen and TrailerLen are the bytes a frame adds before and after
// the payload.
const (
	HeaderLen  = 4
	TrailerLen = 4
	Overhead   = HeaderLen + TrailerLen
)

// Kind tells what a record holds.
type Kind byte

// The kinds of records.
const (
	Page       Kind = 'R' // a cached page (internal/pagecache/entry.go)
	Value      Kind = 'V' // a value of the typed API (echocache/value.go)
	Fragment   Kind = 'F' // a rendered template fragment (pongotag)
	FileEntry  Kind = 'D' // an entry file of the file store (stores/file_entry.go)
	Compressed Kind = 'Z' // another record, compressed (compress.go)
)

// Errors of Open. They never leave the packages that read records: a
// record that does not open is a miss.
var (
	ErrShort    = errors.New("record: truncated")
	ErrKind     = errors.New("record: not a record of this kind")
	ErrVersion  = errors.New("record: unknown format version")
	ErrChecksum = errors.New("record: checksum mismatch")
)

var table = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, table) }

// Begin appends the header of a record of kind k and version v to dst.
// The payload follows; Seal ends the record.
func Begin(dst []byte, k Kind, v byte) []byte {
	return append(dst, Magic[0], Magic[1], byte(k), v)
}

// Seal appends the checksum of rec, which must start with Begin's header.
func Seal(rec []byte) []byte {
	return binary.LittleEndian.AppendUint32(rec, Checksum(rec))
}

// Is reports whether b starts like a record of kind k (any version).
func Is(b []byte, k Kind) bool {
	return len(b) >= HeaderLen && b[0] == Magic[0] && b[1] == Magic[1] && b[2] == byte(k)
}

// Open checks rec as a record of kind k and version v and returns its
// payload, a sub-slice of rec. With verify it also checks the checksum.
// It never panics, whatever rec holds. (Small enough to be inlined: the
// hit path of the typed API opens every value it reads.)
func Open(rec []byte, k Kind, v byte, verify bool) ([]byte, error) {
	n := len(rec)
	if n < Overhead || binary.LittleEndian.Uint32(rec) != header(k, v) || verify && !checksumOK(rec) {
		return nil, openError(rec, k, v)
	}
	return rec[HeaderLen : n-TrailerLen : n-TrailerLen], nil
}

// header is the first four bytes of a record of kind k and version v, as
// a little-endian uint32.
func header(k Kind, v byte) uint32 {
	return uint32(Magic[0]) | uint32(Magic[1])<<8 | uint32(k)<<16 | uint32(v)<<24
}

func checksumOK(rec []byte) bool {
	end := len(rec) - TrailerLen
	return Checksum(rec[:end]) == binary.LittleEndian.Uint32(rec[end:])
}

// openError says why rec did not open.
func openError(rec []byte, k Kind, v byte) error {
	switch {
	case len(rec) < Overhead:
		return ErrShort
	case !Is(rec, k):
		return ErrKind
	case rec[3] != v:
		return ErrVersion
	}
	return ErrChecksum
}
