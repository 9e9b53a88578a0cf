package pagecache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unsafe"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/internal/record"
)

// A stored page entry is a flat, versioned, checksummed record (framed
// like every record, see internal/record: the magic "EC", the kind 'R' and
// the version, then the fields below, then the CRC-32C). It is not
// gob: decoding never runs code chosen by the data, and the hit path reads
// fields in place without building an object graph.
//
//	offset  size  field
//	0       3     magic "EC" and kind 'R' (record.Page)
//	3       1     format version (entryVersion)
//	4       8     page nonce (uint64 LE)
//	12      8     stored at (unix nanoseconds, int64 LE)
//	20      8     fresh until
//	28      8     stale-while-revalidate until (>= fresh until)
//	36      8     stale-if-error until (>= fresh until)
//	44      2     status (uint16 LE, 100..999)
//	46      4     body length (uint32 LE)
//	50      4     number of header values, all headers together (uint32 LE)
//	54      4     record length, these 4 bytes and the checksum included
//	58      str   variant key the entry was stored under
//	        list  response Vary header names: uvarint count, then str each
//	        list  tags: uvarint count, then str name + 8-byte version each
//	        list  headers: uvarint count, then str name, uvarint value
//	              count and str each value
//	        body  (body length bytes)
//	end-4   4     CRC-32C of every byte before it (uint32 LE)
//
// A str is a uvarint length followed by that many bytes. A record that is
// truncated, too long, of another version, with a bad checksum or a broken
// structure does not decode; the middleware treats it as a miss and
// deletes it.
//
// Bytes read from the network or a file are checked whole: checksum,
// structure, header names and values. Bytes an in-process store hands out
// without copying (internal/inproc) never left the process and are what
// encodeEntry wrote, so the hit path skips the checksum and the checks of
// header names and values for them (a 2 KiB checksum costs as much as the
// rest of a hit), and decodes each such value once, keeping the entry in
// the store's memo (decodeViewed). It still checks the magic, version,
// record length and structure and bounds-checks every read, so a truncated
// or foreign value is a miss and even garbage cannot make it panic; only a
// record altered in place in the process's memory would go unnoticed.

const (
	entryVersion = 1
	entryFixed   = 58 // bytes before the key
	entryMinSize = entryFixed + 1 /* empty key */ + 3 /* three empty lists */ + 4
)

// Decoding errors, besides record's. They never leave the package: a bad
// entry is a miss.
var (
	errEntryShort   = errors.New("echocache: entry truncated")
	errEntryCorrupt = errors.New("echocache: page entry corrupt")
)

// tagVersion is a tag and the version it had when an entry was stored.
type tagVersion struct {
	name    string
	version uint64
}

// entryData is what encodeEntry writes.
type entryData struct {
	nonce                                    uint64
	key                                      []byte
	storedAt, freshUntil, swrUntil, sieUntil int64
	status                                   int
	vary                                     []string
	tags                                     []tagVersion
	header                                   http.Header
	body                                     []byte
}

// encodeEntry returns the record for d in one allocation. Header names are
// written sorted, so equal responses give equal records. The body must be
// shorter than 4 GiB.
func encodeEntry(d *entryData) []byte {
	names := make([]string, 0, len(d.header))
	size := entryFixed + strSize(len(d.key)) + uvarintSize(uint64(len(d.vary))) +
		uvarintSize(uint64(len(d.tags))) + uvarintSize(uint64(len(d.header))) +
		len(d.body) + 4
	nVals := 0
	for _, v := range d.vary {
		size += strSize(len(v))
	}
	for _, t := range d.tags {
		size += strSize(len(t.name)) + 8
	}
	for k, vs := range d.header {
		names = append(names, k)
		nVals += len(vs)
		size += strSize(len(k)) + uvarintSize(uint64(len(vs)))
		for _, v := range vs {
			size += strSize(len(v))
		}
	}
	slices.Sort(names)

	b := record.Begin(make([]byte, 0, size), record.Page, entryVersion)
	b = binary.LittleEndian.AppendUint64(b, d.nonce)
	b = binary.LittleEndian.AppendUint64(b, uint64(d.storedAt))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.freshUntil))
	b = binary.LittleEndian.AppendUint64(b, uint64(max(d.swrUntil, d.freshUntil)))
	b = binary.LittleEndian.AppendUint64(b, uint64(max(d.sieUntil, d.freshUntil)))
	b = binary.LittleEndian.AppendUint16(b, uint16(d.status))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.body)))
	b = binary.LittleEndian.AppendUint32(b, uint32(nVals))
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = appendStr(b, d.key)
	b = binary.AppendUvarint(b, uint64(len(d.vary)))
	for _, v := range d.vary {
		b = appendStr(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(d.tags)))
	for _, t := range d.tags {
		b = appendStr(b, t.name)
		b = binary.LittleEndian.AppendUint64(b, t.version)
	}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		vs := d.header[k]
		b = appendStr(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendStr(b, v)
		}
	}
	b = append(b, d.body...)
	return record.Seal(b)
}

func uvarintSize(n uint64) int {
	s := 1
	for n >= 0x80 {
		n >>= 7
		s++
	}
	return s
}

func strSize(n int) int { return uvarintSize(uint64(n)) + n }

func appendStr[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// entry is a decoded record. Its strings and slices point into raw, which
// must never be modified after decoding (the hit path puts those strings
// into response headers without copying).
type entry struct {
	raw                                      []byte
	nonce                                    uint64
	storedAt, freshUntil, swrUntil, sieUntil int64
	status                                   int
	key                                      []byte

	varyBlock []byte // the vary list after its count
	nVary     int
	tagBlock  []byte // the tag list after its count
	nTags     int

	fields    []hdrField // the header list, in record order
	vals      []string   // every header value, in record order
	nVals     int        // len(vals)
	etagValue string     // the first ETag value, or ""

	body []byte
}

// hdrField is one header of an entry: its name and its values, vals[lo:hi].
type hdrField struct {
	name   string
	lo, hi int
}

// decodeEntry checks raw and decodes it. It walks the header list once,
// into strings, and checks the record's structure. With verify it also
// checks the checksum and every header name and value, so that nothing
// later can find a fault; without it (bytes that never left the process,
// see above) it skips those checks. It never panics, whatever raw holds.
func decodeEntry(raw []byte, verify bool) (entry, error) {
	var e entry
	if len(raw) < entryMinSize {
		return e, errEntryShort
	}
	if !record.Is(raw, record.Page) {
		return e, record.ErrKind // checked first: the cheapest refusal of a foreign value
	}
	if uint64(binary.LittleEndian.Uint32(raw[54:])) != uint64(len(raw)) {
		return e, errEntryShort
	}
	if _, err := record.Open(raw, record.Page, entryVersion, verify); err != nil {
		return e, err
	}
	end := len(raw) - record.TrailerLen
	le := binary.LittleEndian
	e.nonce = le.Uint64(raw[4:])
	e.storedAt = int64(le.Uint64(raw[12:]))
	e.freshUntil = int64(le.Uint64(raw[20:]))
	e.swrUntil = int64(le.Uint64(raw[28:]))
	e.sieUntil = int64(le.Uint64(raw[36:]))
	e.status = int(le.Uint16(raw[44:]))
	bodyLen := uint64(le.Uint32(raw[46:]))
	nVals := uint64(le.Uint32(raw[50:]))
	if e.status < 100 || e.status > 999 || e.swrUntil < e.freshUntil || e.sieUntil < e.freshUntil ||
		bodyLen > uint64(end-entryFixed) {
		return entry{}, errEntryCorrupt
	}
	bodyStart := end - int(bodyLen)
	e.raw = raw
	e.body = raw[bodyStart:end:end]

	r := reader{b: raw[entryFixed:bodyStart]}
	e.key = r.str()
	e.nVary = r.count()
	start := r.i
	for i := 0; i < e.nVary && r.ok(); i++ {
		if name := r.str(); verify && !validHeaderName(name) {
			r.bad = true
		}
	}
	e.varyBlock = r.b[start:r.i]
	e.nTags = r.count()
	start = r.i
	for i := 0; i < e.nTags && r.ok(); i++ {
		r.str()
		r.fixed(8)
	}
	e.tagBlock = r.b[start:r.i]
	nHdr := r.count()
	if !r.ok() || nVals > uint64(len(r.rest())) {
		return entry{}, errEntryCorrupt
	}

	// The one walk of the header list: the names and values become strings
	// that view raw, which every hit hands to the response without parsing.
	e.fields = make([]hdrField, 0, nHdr)
	e.vals = make([]string, 0, nVals)
	for i := 0; i < nHdr && r.ok(); i++ {
		name := r.str()
		if verify && !validHeaderName(name) {
			r.bad = true
		}
		nv := r.count()
		if uint64(len(e.vals)+nv) > nVals {
			r.bad = true
			break
		}
		lo := len(e.vals)
		for j := 0; j < nv && r.ok(); j++ {
			v := r.str()
			if verify && !validHeaderValue(v) {
				r.bad = true
			}
			e.vals = append(e.vals, bstr(v))
		}
		if e.etagValue == "" && len(e.vals) > lo && strings.EqualFold(bstr(name), headerETag) {
			e.etagValue = e.vals[lo]
		}
		e.fields = append(e.fields, hdrField{name: bstr(name), lo: lo, hi: len(e.vals)})
	}
	if !r.ok() || r.i != len(r.b) || uint64(len(e.vals)) != nVals {
		return entry{}, errEntryCorrupt
	}
	e.nVals = len(e.vals)
	return e, nil
}

// decodeViewed decodes raw like decodeEntry and returns the entry: buf,
// which it decodes into, or, with a memo (the inproc.Memo an in-process
// store keeps beside raw), an entry decoded once and shared. The first
// reader of raw decodes it and keeps the entry in the memo; later readers use that. Nothing modifies an entry after
// decoding, so sharing one is safe. A kept entry is used only for the very
// bytes it was decoded from.
func decodeViewed(buf *entry, raw []byte, memo *inproc.Memo, verify bool) (*entry, error) {
	if memo != nil {
		if d, ok := memo.Load().(*entry); ok && len(d.raw) == len(raw) && &d.raw[0] == &raw[0] {
			return d, nil
		}
	}
	d, err := decodeEntry(raw, verify)
	if err != nil {
		return nil, err
	}
	if memo == nil {
		*buf = d
		return buf, nil
	}
	memo.Store(&d)
	return &d, nil
}

// etag returns the first value of the entry's ETag header, or "".
func (e *entry) etag() string { return e.etagValue }

// reader walks a record. Any out-of-bounds read sets bad, moves to the end
// and yields empty values from then on.
type reader struct {
	b   []byte
	i   int // next byte to read
	bad bool
}

func (r *reader) ok() bool { return !r.bad }

// rest returns the bytes not read yet.
func (r *reader) rest() []byte { return r.b[r.i:] }

func (r *reader) fail() {
	r.bad, r.i = true, len(r.b)
}

// uvarint reads a uvarint; one-byte values (most lengths and counts) take
// the inlined path.
func (r *reader) uvarint() uint64 {
	if i := r.i; i < len(r.b) && r.b[i] < 0x80 {
		r.i++
		return uint64(r.b[i])
	}
	return r.uvarintSlow()
}

func (r *reader) uvarintSlow() uint64 {
	n, w := binary.Uvarint(r.b[r.i:])
	if w <= 0 {
		r.fail()
		return 0
	}
	r.i += w
	return n
}

// count reads a list length; every element takes at least one byte, so a
// count above the bytes left is corrupt.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)-r.i) {
		r.fail()
		return 0
	}
	return int(n)
}

// fixed reads n bytes.
func (r *reader) fixed(n int) []byte {
	i := r.i
	if n > len(r.b)-i {
		r.fail()
		return nil
	}
	r.i = i + n
	return r.b[i : i+n : i+n]
}

// str reads a uvarint length and that many bytes.
func (r *reader) str() []byte {
	return r.fixed(r.count())
}

// bstr views b as a string without copying. Only for bytes of a decoded
// entry, which are never modified.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// tokenChar marks the bytes allowed in a header name (RFC 9110 tchar).
var tokenChar = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

func validHeaderName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' {
			return false // CR, LF, NUL and other controls
		}
	}
	return true
}

// varyNames returns the response Vary names recorded in the entry, or nil.
func (e *entry) varyNames() []string {
	if e.nVary == 0 {
		return nil
	}
	out := make([]string, 0, e.nVary)
	r := reader{b: e.varyBlock}
	for range e.nVary {
		out = append(out, bstr(r.str()))
	}
	return out
}

// tagVersions returns the tags recorded in the entry.
func (e *entry) tagVersions() []tagVersion {
	if e.nTags == 0 {
		return nil
	}
	out := make([]tagVersion, 0, e.nTags)
	r := reader{b: e.tagBlock}
	for range e.nTags {
		name := bstr(r.str())
		out = append(out, tagVersion{name: name, version: binary.LittleEndian.Uint64(r.fixed(8))})
	}
	return out
}

// applyHeaders sets the entry's headers on h, replacing values of the same
// names. The values are copied into vals (which must hold at least e.nVals
// strings), so that no two responses share a header's backing array. keep,
// when not nil, selects the names to set.
func (e *entry) applyHeaders(h http.Header, vals []string, keep func(name string) bool) {
	vals = vals[:len(e.vals)]
	copy(vals, e.vals)
	for _, f := range e.fields {
		if keep == nil || keep(f.name) {
			h[f.name] = vals[f.lo:f.hi:f.hi]
		}
	}
}
