package echocache

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/echocache/echocache/internal/record"
)

// Stored layout of a typed value: a record (internal/record: "EC", the
// kind 'V', the version, a payload, a CRC-32C), or a decimal integer. The
// payload's first byte tells what follows, so a cached zero value is told
// apart from a miss and a corrupt entry is recognised instead of misread:
//
//   - 'V' then the codec's encoding of the value;
//   - 'S' then the bytes of a string, 'B' then the bytes of a []byte: the
//     common text and HTML results skip the codec;
//   - 'Z' alone: the zero value of the type (nil, 0, "", an empty struct);
//
// Values of integer kinds are stored unframed, as decimal text (first byte
// a digit or '-'), so that Cache.Incr works on them and Get reads what Incr
// wrote. Values written before records were framed (a bare format byte)
// do not open: they are misses, deleted like corrupt entries, and the next
// write replaces them.
const (
	valueVersion = 1

	fmtValue  byte = 'V'
	fmtString byte = 'S'
	fmtBytes  byte = 'B'
	fmtZero   byte = 'Z'
)

// errCorruptValue wraps every decoding failure of a stored value.
var errCorruptValue = errors.New("echocache: corrupt cached value")

// storedAsInteger reports whether values of kind k are stored as decimal text.
func storedAsInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// isZeroValue reports whether v is the zero value of T.
func isZeroValue[T any](v *T) bool { return reflect.ValueOf(v).Elem().IsZero() }

// frameValue returns the record of a value: format byte f, then data.
func frameValue[S string | []byte](f byte, data S) []byte {
	b := record.Begin(make([]byte, 0, record.Overhead+1+len(data)), record.Value, valueVersion)
	b = append(b, f)
	return record.Seal(append(b, data...))
}

// encodeValue returns the stored form of v.
func encodeValue[T any](codec Codec, v T) ([]byte, error) {
	switch x := any(v).(type) {
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case string:
		if x == "" {
			return frameValue(fmtZero, ""), nil
		}
		return frameValue(fmtString, x), nil
	case []byte:
		if x == nil {
			return frameValue(fmtZero, ""), nil
		}
		return frameValue(fmtBytes, x), nil
	}
	rv := reflect.ValueOf(&v).Elem()
	if storedAsInteger(rv.Kind()) {
		if rv.CanInt() {
			return strconv.AppendInt(nil, rv.Int(), 10), nil
		}
		return strconv.AppendUint(nil, rv.Uint(), 10), nil
	}
	if rv.IsZero() {
		return frameValue(fmtZero, ""), nil
	}
	if err := checkNesting(rv); err != nil {
		return nil, fmt.Errorf("echocache: encoding %T: %w", v, err)
	}
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("echocache: encoding %T: %w", v, err)
	}
	return frameValue(fmtValue, b), nil
}

// decodeValue reads a stored form written by encodeValue (or by Incr) into
// a T. Bytes that break the layout, fail the record's checksum (checked
// with verify: bytes from outside the process) or fail the codec's own
// format check give an error wrapping errCorruptValue; a well-formed value
// that a T cannot hold gives a *TypeMismatchError (Key unset). It never
// panics on malformed data.
func decodeValue[T any](codec Codec, data []byte, verify bool) (v T, err error) {
	defer func() {
		// A codec that panics on malformed input must not crash the caller.
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: decoder panicked: %v", errCorruptValue, r)
		}
	}()
	if len(data) == 0 {
		return v, fmt.Errorf("%w: empty", errCorruptValue)
	}
	if b := data[0]; b == '-' || '0' <= b && b <= '9' {
		return decodeInteger[T](data)
	}
	data, err = record.Open(data, record.Value, valueVersion, verify)
	if err != nil || len(data) == 0 {
		return v, fmt.Errorf("%w: %v", errCorruptValue, cmp.Or(err, errors.New("empty record")))
	}
	switch b := data[0]; {
	case b == fmtZero && len(data) == 1:
		return v, nil
	case b == fmtString:
		switch p := any(&v).(type) {
		case *string:
			*p = string(data[1:])
			return v, nil
		case *any:
			*p = string(data[1:])
			return v, nil
		}
		return v, mismatch[T]("string", nil)
	case b == fmtBytes:
		switch p := any(&v).(type) {
		case *[]byte:
			*p = append([]byte{}, data[1:]...)
			return v, nil
		case *any:
			*p = append([]byte{}, data[1:]...)
			return v, nil
		}
		return v, mismatch[T]("[]byte", nil)
	case b == fmtValue:
		checker, canCheck := codec.(FormatChecker)
		if canCheck && !checker.WellFormed(data[1:]) {
			return v, fmt.Errorf("%w: not a well-formed %T encoding", errCorruptValue, codec)
		}
		if err := codec.Unmarshal(data[1:], &v); err != nil {
			var zero T
			// Well-formed (or not checkable): the bytes may be fine for
			// the type they were written with.
			return zero, mismatch[T]("encoded value", err)
		}
		return v, nil
	}
	return v, fmt.Errorf("%w: unknown format byte %#x", errCorruptValue, data[0])
}

// decodeInteger reads a value stored as decimal text (an integer kind, or
// a counter written by Incr). Text that is not a decimal int64 or uint64 is
// corrupt; an integer that T cannot hold is a type mismatch.
func decodeInteger[T any](data []byte) (v T, err error) {
	text := string(data)
	n, serr := strconv.ParseInt(text, 10, 64)
	u, uerr := strconv.ParseUint(text, 10, 64)
	if serr != nil && uerr != nil {
		return v, fmt.Errorf("%w: %q is not a 64-bit decimal integer", errCorruptValue, data)
	}
	if p, ok := any(&v).(*any); ok {
		if serr == nil {
			*p = n
		} else {
			*p = u
		}
		return v, nil
	}
	rv := reflect.ValueOf(&v).Elem()
	switch {
	case !storedAsInteger(rv.Kind()):
	case rv.CanInt() && serr == nil && !rv.OverflowInt(n):
		rv.SetInt(n)
		return v, nil
	case rv.CanUint() && uerr == nil && !rv.OverflowUint(u):
		rv.SetUint(u)
		return v, nil
	}
	return v, mismatch[T]("integer "+text, nil)
}

// mismatch reports a stored value of the given kind read as a T.
func mismatch[T any](stored string, err error) error {
	return &TypeMismatchError{Stored: stored, Want: reflect.TypeFor[T]().String(), Err: err}
}

// ErrTypeMismatch is matched (with errors.Is) by every [TypeMismatchError].
var ErrTypeMismatch = errors.New("echocache: cached value has another type")

// TypeMismatchError reports a cached value read with a Go type that cannot
// hold it: Get[int] of a key Set with a string, Get[int8] of 1000, a struct
// read as another struct whose fields do not fit. It is the caller's
// mistake, not the store's: the entry is kept for the readers of its own
// type, and only bytes that fail their format's own checks are dropped as
// corrupt (see [FormatChecker]).
//
// [Get] returns it wrapped together with ErrNotFound (a miss) unless the
// call is [Strict], which returns it alone. [GetMany] leaves the key out
// of its map (and returns the mismatches, joined, when Strict). [GetOrSet],
// [Func.Get] and [Memoized.Get] call the loader and return its result
// without storing it, so the entry survives, or, when Strict, return the
// error without calling the loader. Each mismatch is logged and counted as
// a miss.
type TypeMismatchError struct {
	// Key is the entry's key in the store's namespace: v:<key> for the
	// typed API and Function, m:<name>:<version>:<argument> for Memoize.
	Key string
	// Stored says what the entry holds: "string", "[]byte", "integer N"
	// or "encoded value" (a value encoded by the Codec).
	Stored string
	// Want is the Go type asked for, as reflect prints it ("int",
	// "main.User").
	Want string
	// Err is the codec's error for an encoded value, or nil.
	Err error
}

// Error implements error.
func (e *TypeMismatchError) Error() string {
	msg := fmt.Sprintf("echocache: %q holds %s, which %s cannot hold", e.Key, withArticle(e.Stored), withArticle(e.Want))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// withArticle puts "a" or "an" before a noun or a Go type's name: "an
// integer 7", "an encoded value", "an int", "a uint8", "a []byte".
func withArticle(s string) string {
	if s != "" && strings.IndexByte("aeioAEIO", s[0]) >= 0 {
		return "an " + s
	}
	return "a " + s
}

// Is reports whether target is ErrTypeMismatch.
func (e *TypeMismatchError) Is(target error) bool { return target == ErrTypeMismatch }

// Unwrap returns the codec's error, or nil.
func (e *TypeMismatchError) Unwrap() error { return e.Err }
