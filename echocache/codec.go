package echocache

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// Codec turns values of the typed API into bytes and back. Decode must not
// run code chosen by the data (no gob of interfaces, no pickle).
//
// A codec should also implement [FormatChecker]: without it the typed API
// cannot tell a corrupt entry from a value read with the wrong Go type, so
// it keeps every entry the codec fails to decode (see [TypeMismatchError]).
//
// Unmarshal must not keep data, nor slices of it, after it returns (as
// encoding.BinaryUnmarshaler's contract says): it may be the bytes a
// store's in-process tier holds.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// FormatChecker is implemented by a [Codec] that can tell whether bytes are
// a well-formed encoding in its format, whatever Go value they encode. The
// typed API drops an entry whose bytes are not well-formed (corrupt,
// truncated, or written with another codec) and keeps one that is
// well-formed but does not decode into the Go type asked for, reporting a
// [TypeMismatchError]. CBORCodec, JSONCodec and GobCodec implement it.
type FormatChecker interface {
	WellFormed(data []byte) bool
}

// DefaultCodec is the codec of a Cache whose Config.Codec is nil: CBOR
// (RFC 8949), see [CBORCodec]. It is a variable only so that its doc can be
// linked; set Config.Codec to use another codec rather than assigning it.
var DefaultCodec Codec = CBORCodec{}

// CBORCodec encodes values as CBOR (RFC 8949) with
// github.com/fxamacker/cbor/v2. It is the default codec: about twice as fast
// as encoding/json and many times faster than encoding/gob on small values
// (see codec_bench_test.go), and safe on hostile input: decoding only fills
// the Go value the caller asked for (no type named by the data is ever
// instantiated), well-formedness is checked before anything is allocated,
// and nesting depth is bounded.
//
// time.Time values keep nanoseconds and their zone offset (RFC 3339 text).
// Structs are encoded by field name, like encoding/json, and honour `cbor`
// and `json` struct tags. Values decoded into an interface{} come back as
// CBOR's generic types (map[any]any, []any, uint64, ...).
type CBORCodec struct{}

var (
	cborEnc = mustCBOREnc()
	cborDec = mustCBORDec()
)

func mustCBOREnc() cbor.EncMode {
	m, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.EncMode()
	if err != nil {
		panic("echocache: CBOR encoder options: " + err.Error())
	}
	return m
}

func mustCBORDec() cbor.DecMode {
	m, err := cbor.DecOptions{
		// The defaults (32 levels, 131072 elements) refuse legitimate large
		// values; the data is well-formedness checked before decoding, so a
		// short buffer claiming a huge array cannot make us allocate it.
		MaxNestedLevels:  1000,
		MaxArrayElements: 1<<31 - 1,
		MaxMapPairs:      1<<31 - 1,
	}.DecMode()
	if err != nil {
		panic("echocache: CBOR decoder options: " + err.Error())
	}
	return m
}

// Marshal implements [Codec].
func (CBORCodec) Marshal(v any) ([]byte, error) { return cborEnc.Marshal(v) }

// Unmarshal implements [Codec].
func (CBORCodec) Unmarshal(data []byte, v any) error { return cborDec.Unmarshal(data, v) }

// WellFormed implements [FormatChecker]: data is one well-formed CBOR data
// item (RFC 8949 §5.3.1) within the decoder's nesting and size bounds.
func (CBORCodec) WellFormed(data []byte) bool { return cborDec.Wellformed(data) == nil }

// JSONCodec encodes values with encoding/json: slower and larger than CBOR,
// but readable in redis-cli and by programs in any language. Decoding runs
// no code chosen by the data. time.Time keeps nanoseconds; []byte becomes
// base64; a float64 decoded into interface{} loses integer precision above
// 2^53.
type JSONCodec struct{}

// Marshal implements [Codec].
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements [Codec].
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// WellFormed implements [FormatChecker] with json.Valid (RFC 8259).
func (JSONCodec) WellFormed(data []byte) bool { return json.Valid(data) }

// GobCodec encodes values with encoding/gob. It round-trips more Go types
// than JSON (unexported-field-free structs, maps with non-string keys,
// registered interface values) but each value carries its type description,
// which makes small values slow and large. encoding/gob is not hardened
// against adversarial input; use it only with a store that no one else can
// write to. Interface values decode only into types registered with
// gob.Register, so the data cannot name an arbitrary type.
type GobCodec struct{}

// Marshal implements [Codec].
func (GobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal implements [Codec].
func (GobCodec) Unmarshal(data []byte, v any) (err error) {
	// encoding/gob has panicked on malformed input in the past; a corrupt
	// entry must be a miss, never a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("echocache: gob decode: %v", r)
		}
	}()
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// WellFormed implements [FormatChecker]: the gob stream holds one value,
// which decodes when discarded (gob checks the stream's type descriptions
// and the value against them without a Go type to fill).
func (GobCodec) WellFormed(data []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return gob.NewDecoder(bytes.NewReader(data)).DecodeValue(reflect.Value{}) == nil
}
