package stores

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"

	"github.com/echocache/echocache/internal/record"
)

// Entry file format (integers little-endian), a record of kind 'D' (see
// internal/record):
//
//	"EC" 'D' version | expiry int64 (Unix ns, 0 = never) | key length uint32 |
//	value length uint64 | key | value | CRC-32C of all before
//
// Files written before the store framed its entries like every record
// start with "ecf1" instead of the record header; their layout is the same
// otherwise, and they still decode.
const (
	fileVersion    = 1
	fileOldMagic   = "ecf1"
	fileHeaderLen  = record.HeaderLen + 8 + 4 + 8
	fileTrailerLen = record.TrailerLen
)

// errCorrupt marks an entry file that cannot be decoded.
var errCorrupt = errors.New("stores: file: corrupt entry")

func encodeFileEntry(key string, val []byte, exp int64) []byte {
	b := make([]byte, fileHeaderLen, fileHeaderLen+len(key)+len(val)+fileTrailerLen)
	record.Begin(b[:0], record.FileEntry, fileVersion)
	binary.LittleEndian.PutUint64(b[4:], uint64(exp))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(key)))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(val)))
	b = append(b, key...)
	b = append(b, val...)
	return record.Seal(b)
}

// isFileEntry reports whether b starts with the header of an entry file,
// of this format or the previous one.
func isFileEntry(b []byte) bool {
	return len(b) >= record.HeaderLen && (string(b[:4]) == fileOldMagic ||
		record.Is(b, record.FileEntry) && b[3] == fileVersion)
}

// decodeFileEntry checks b and returns its value (a sub-slice of b) and
// expiry. A file that is not a whole entry for key is errCorrupt.
func decodeFileEntry(b []byte, key string) (val []byte, exp int64, err error) {
	if len(b) < fileHeaderLen+fileTrailerLen || !isFileEntry(b) {
		return nil, 0, errCorrupt
	}
	klen := uint64(binary.LittleEndian.Uint32(b[12:]))
	vlen := binary.LittleEndian.Uint64(b[16:])
	body := uint64(len(b) - fileHeaderLen - fileTrailerLen)
	if klen > body || vlen != body-klen {
		return nil, 0, errCorrupt
	}
	end := len(b) - fileTrailerLen
	if record.Checksum(b[:end]) != binary.LittleEndian.Uint32(b[end:]) {
		return nil, 0, errCorrupt
	}
	if string(b[fileHeaderLen:fileHeaderLen+int(klen)]) != key {
		return nil, 0, errCorrupt // only a file moved by hand gets here
	}
	exp = int64(binary.LittleEndian.Uint64(b[4:]))
	return b[fileHeaderLen+int(klen) : end : end], exp, nil
}

// keyHash names the file of key.
func keyHash(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

func (f *File) path(h [sha256.Size]byte) string {
	return filepath.Join(f.ns, hex.EncodeToString(h[:]))
}

// isEntryName reports whether name is an entry file: 64 lowercase hex digits.
func isEntryName(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
