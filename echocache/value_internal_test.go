package echocache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/record"
)

type pair struct{ A, B string }

func TestIntegersStoredAsText(t *testing.T) {
	check := func(name string, enc []byte, want string) {
		t.Helper()
		assert.Equal(t, want, string(enc), name)
	}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"int", 42, "42"},
		{"negative", int64(-7), "-7"},
		{"min int64", int64(math.MinInt64), "-9223372036854775808"},
		{"max uint64", uint64(math.MaxUint64), "18446744073709551615"},
		{"duration", time.Second, "1000000000"},
		{"zero int", 0, "0"},
	} {
		var b []byte
		var err error
		switch v := tc.v.(type) {
		case int:
			b, err = encodeValue(DefaultCodec, v)
		case int64:
			b, err = encodeValue(DefaultCodec, v)
		case uint64:
			b, err = encodeValue(DefaultCodec, v)
		case time.Duration:
			b, err = encodeValue(DefaultCodec, v)
		}
		require.NoError(t, err)
		check(tc.name, b, tc.want)
	}
	u, err := decodeValue[uint64](DefaultCodec, []byte("18446744073709551615"), true)
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint64), u)
	// A well-formed integer that the type cannot hold is the caller's
	// mismatch, not corruption; text that is no 64-bit integer is corrupt.
	_, err = decodeValue[int8](DefaultCodec, []byte("128"), true)
	assert.ErrorIs(t, err, ErrTypeMismatch, "int8 overflow")
	_, err = decodeValue[uint8](DefaultCodec, []byte("-1"), true)
	assert.ErrorIs(t, err, ErrTypeMismatch, "negative uint")
	_, err = decodeValue[int64](DefaultCodec, []byte("18446744073709551615"), true)
	assert.ErrorIs(t, err, ErrTypeMismatch, "uint64 above MaxInt64 read as int64")
	_, err = decodeValue[string](DefaultCodec, []byte("12"), true)
	assert.ErrorIs(t, err, ErrTypeMismatch, "integer read as a string")
	for _, bad := range []string{"-", "12abc", "99999999999999999999", "1 "} {
		_, err = decodeValue[int64](DefaultCodec, []byte(bad), true)
		assert.ErrorIs(t, err, errCorruptValue, "%q read as an int64", bad)
		_, err = decodeValue[any](DefaultCodec, []byte(bad), true)
		assert.ErrorIs(t, err, errCorruptValue, "%q read as an any", bad)
	}
}

// TestDecodeMismatchOrCorrupt checks which failures keep an entry (a type
// mismatch) and which drop it (corrupt bytes), for every stored layout and
// every built-in codec.
func TestDecodeMismatchOrCorrupt(t *testing.T) {
	type point struct{ X, Y int }
	for _, codec := range []Codec{CBORCodec{}, JSONCodec{}, GobCodec{}} {
		t.Run(fmt.Sprintf("%T", codec), func(t *testing.T) {
			enc := func(v any) []byte {
				b, err := encodeValue(codec, v)
				require.NoError(t, err)
				return b
			}
			str, byt, num, pt := enc("eggs"), enc([]byte{1, 2}), enc(42), enc(point{1, 2})
			for name, err := range map[string]error{
				"string as int":     second(decodeValue[int](codec, str, true)),
				"string as []byte":  second(decodeValue[[]byte](codec, str, true)),
				"[]byte as string":  second(decodeValue[string](codec, byt, true)),
				"integer as []byte": second(decodeValue[[]byte](codec, num, true)),
				"struct as int":     second(decodeValue[int](codec, pt, true)),
				"struct as string":  second(decodeValue[string](codec, pt, true)),
			} {
				assert.ErrorIs(t, err, ErrTypeMismatch, name)
				assert.NotErrorIs(t, err, errCorruptValue, name)
			}
			for name, raw := range map[string][]byte{
				"truncated":       pt[:len(pt)-1],
				"garbage":         frameValue(fmtValue, "\xff\xfe\xfd"),
				"flipped":         flipped(pt),
				"previous format": []byte("V\xff\xfe\xfd"),
			} {
				_, err := decodeValue[point](codec, raw, true)
				assert.ErrorIs(t, err, errCorruptValue, name)
			}
			// Get[any] returns what was stored.
			for name, tc := range map[string]struct {
				raw  []byte
				want any
			}{
				"string": {str, "eggs"},
				"bytes":  {byt, []byte{1, 2}},
				"int":    {num, int64(42)},
				"uint":   {[]byte("18446744073709551615"), uint64(math.MaxUint64)},
				"zero":   {enc(0), int64(0)},
				"empty":  {enc(""), nil},
			} {
				got, err := decodeValue[any](codec, tc.raw, true)
				require.NoError(t, err, name)
				assert.Equal(t, tc.want, got, name)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// flipped returns b with one payload bit changed.
func flipped(b []byte) []byte {
	b = bytes.Clone(b)
	b[record.HeaderLen+1] ^= 0x10
	return b
}

func TestZeroEnvelope(t *testing.T) {
	for name, enc := range map[string]func() ([]byte, error){
		"nil pointer": func() ([]byte, error) { return encodeValue[*pair](DefaultCodec, nil) },
		"nil slice":   func() ([]byte, error) { return encodeValue[[]int](DefaultCodec, nil) },
		"empty":       func() ([]byte, error) { return encodeValue(DefaultCodec, "") },
		"zero struct": func() ([]byte, error) { return encodeValue(DefaultCodec, pair{}) },
		"nil any":     func() ([]byte, error) { return encodeValue[any](DefaultCodec, nil) },
	} {
		b, err := enc()
		require.NoError(t, err, name)
		assert.Equal(t, frameValue(fmtZero, ""), b, name)
	}
	b, err := encodeValue(DefaultCodec, []int{})
	require.NoError(t, err)
	assert.Equal(t, fmtValue, b[record.HeaderLen], "an empty non-nil slice is not the zero value")
	got, err := decodeValue[[]int](DefaultCodec, b, true)
	require.NoError(t, err)
	assert.NotNil(t, got)
	p, err := decodeValue[*pair](DefaultCodec, frameValue(fmtZero, ""), true)
	require.NoError(t, err)
	assert.Nil(t, p)
}

type fuzzValue struct {
	ID   int
	Name string
	Tags []string
	M    map[string]float64
	Sub  *fuzzValue
	When time.Time
}

// FuzzDecodeValue: decoding arbitrary bytes returns a value or an error
// wrapping errCorruptValue; it never panics, with any of the codecs.
func FuzzDecodeValue(f *testing.F) {
	good, _ := encodeValue(DefaultCodec, fuzzValue{ID: 1, Name: "x", Tags: []string{"a"}, M: map[string]float64{"k": 1}, Sub: &fuzzValue{ID: 2}})
	for _, seed := range [][]byte{good, {}, frameValue(fmtZero, ""), frameValue(fmtValue, ""), []byte("-12"), frameValue(fmtValue, "\x9b\xff\xff\xff\xff\xff\xff\xff\xff"),
		frameValue(fmtValue, strings.Repeat("\x81", 2000)), frameValue(fmtValue, `{"ID":1}`), frameValue(fmtValue, "\x0c\xff\x81\x03\x01\x01"), []byte("V{}")} {
		f.Add(seed)
	}
	codecs := []Codec{CBORCodec{}, JSONCodec{}, GobCodec{}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range codecs {
			check := func(err error) {
				if err != nil && !errors.Is(err, errCorruptValue) && !errors.Is(err, ErrTypeMismatch) {
					t.Fatalf("%T: error %v is neither errCorruptValue nor ErrTypeMismatch", c, err)
				}
				if errors.Is(err, errCorruptValue) && errors.Is(err, ErrTypeMismatch) {
					t.Fatalf("%T: error %v is both corrupt and a type mismatch", c, err)
				}
			}
			for _, verify := range []bool{true, false} {
				_, err := decodeValue[fuzzValue](c, data, verify)
				check(err)
				_, err = decodeValue[any](c, data, verify)
				check(err)
				_, err = decodeValue[int16](c, data, verify)
				check(err)
			}
		}
	})
}

// TestTypeMismatchErrorWording: the message puts the right article before
// what the entry holds and the type asked for.
func TestTypeMismatchErrorWording(t *testing.T) {
	for _, tc := range []struct {
		stored, want, msg string
	}{
		{"encoded value", "int", `echocache: "k" holds an encoded value, which an int cannot hold`},
		{"integer 1000", "int8", `echocache: "k" holds an integer 1000, which an int8 cannot hold`},
		{"string", "uint8", `echocache: "k" holds a string, which a uint8 cannot hold`},
		{"[]byte", "echocache.pair", `echocache: "k" holds a []byte, which an echocache.pair cannot hold`},
	} {
		err := &TypeMismatchError{Key: "k", Stored: tc.stored, Want: tc.want}
		assert.Equal(t, tc.msg, err.Error())
	}
}
