package keyenc

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

func key(t *testing.T, v any) string {
	t.Helper()
	b, err := Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	return string(b)
}

// keyOf encodes v with the compiled encoder of its static type A, the way
// Memoize does.
func keyOf[A any](t *testing.T, a A) string {
	t.Helper()
	enc, err := For(reflect.TypeFor[A]())
	if err != nil {
		t.Fatalf("For(%s): %v", reflect.TypeFor[A](), err)
	}
	b, err := enc(nil, reflect.ValueOf(&a).Elem())
	if err != nil {
		t.Fatalf("encode %#v: %v", a, err)
	}
	return string(b)
}

type pair struct{ A, B string }

type mixed struct {
	S    string
	N    int8
	U    uint16
	F    float32
	C    complex64
	B    bool
	Arr  [2]string
	In   pair
	priv int
	_    int
}

type since struct {
	User  string
	Since time.Time
}

type private struct {
	user  string
	since time.Time
}

type keyed struct{ id int }

func (k keyed) CacheKey() string { return "keyed-" + string(rune('0'+k.id)) }

type node struct {
	Name string
	Next *node
}

func TestDistinct(t *testing.T) {
	// Each row holds values that are all different: their keys must be too.
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rows := []struct {
		name string
		keys []string
	}{
		{"strings with separators", []string{
			key(t, pair{"a:b", ""}), key(t, pair{"a", "b"}), key(t, pair{"a", ":b"}),
			key(t, pair{"", "a:b"}), key(t, pair{"1:a", ""}), key(t, pair{"", "1:a"}),
			key(t, pair{"a,", "b"}), key(t, pair{"a", ",b"}),
		}},
		{"ints", []string{key(t, [2]int{1, 23}), key(t, [2]int{12, 3}), key(t, [2]int{-1, 23}), key(t, [2]int{1, -23})}},
		{"kinds", []string{key(t, "1"), key(t, 1), key(t, 1.0), key(t, true), key(t, nil), key(t, ""), key(t, []byte("1")), key(t, []string{"1"})}},
		{"floats", []string{key(t, 0.1), key(t, 0.1+1e-17+1e-16), key(t, math.Inf(1)), key(t, math.Inf(-1)), key(t, 1e300)}},
		{"unexported fields", []string{key(t, mixed{priv: 1}), key(t, mixed{priv: 2}), key(t, mixed{})}},
		{"nested", []string{key(t, mixed{In: pair{"x", ""}}), key(t, mixed{In: pair{"", "x"}}), key(t, mixed{Arr: [2]string{"x", ""}})}},
		{"types", []string{key(t, pair{"a", "b"}), key(t, struct{ A, B string }{"a", "b"})}},
		{"times", []string{key(t, since{"ann", t0}), key(t, since{"ann", t0.Add(1)}), key(t, since{"bob", t0}),
			key(t, since{"ann", t0.In(time.FixedZone("X", 3600))})}},
		{"unexported times", []string{key(t, private{"ann", t0}), key(t, private{"ann", t0.Add(1)})}},
		{"Keyer and TextMarshaler", []string{key(t, keyed{1}), key(t, keyed{2}), key(t, netip.MustParseAddr("10.0.0.1")),
			key(t, netip.MustParseAddr("10.0.0.2")), key(t, "keyed-1")}},
		{"big unsigned", []string{key(t, uint64(math.MaxUint64)), key(t, int64(-1))}},
		{"maps", []string{key(t, map[string]int{"a": 1, "b": 2}), key(t, map[string]int{"a": 2, "b": 1}), key(t, map[string]int{})}},
		{"pointers", []string{key(t, &node{"a", &node{"b", nil}}), key(t, &node{"a", &node{"c", nil}}), key(t, &node{"a", nil})}},
		{"slices", []string{key(t, []any{[]any{"a"}, "b"}), key(t, []any{"a", []any{"b"}}), key(t, []any{"a", "b"})}},
	}
	for _, r := range rows {
		seen := map[string]int{}
		for i, k := range r.keys {
			if j, dup := seen[k]; dup {
				t.Errorf("%s: values %d and %d share the key %q", r.name, j, i, k)
			}
			seen[k] = i
		}
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b any
	}{
		{"ok, integer types", 5, int64(5)},
		{"ok, unsigned", uint8(5), 5},
		{"ok, named integer", time.Weekday(3), 3},
		{"ok, pointer and value", &pair{"a", "b"}, pair{"a", "b"}},
		{"ok, map order", map[string]int{"a": 1, "b": 2, "c": 3}, map[string]int{"c": 3, "b": 2, "a": 1}},
		{"ok, negative zero", math.Copysign(0, -1), 0.0},
		{"ok, complex negative zero", complex(0, math.Copysign(0, -1)), complex(0, 0)},
		{"ok, NaN", math.NaN(), -math.NaN()},
		{"ok, nil pointer", (*pair)(nil), nil},
		{"ok, float32 and float64 of one value", float32(0.5), 0.5},
	} {
		if a, b := key(t, tc.a), key(t, tc.b); a != b {
			t.Errorf("%s: key(%#v) = %q; key(%#v) = %q; want equal", tc.name, tc.a, a, tc.b, b)
		}
	}
	if got, want := keyOf(t, "hello"), string(AppendString(nil, "hello")); got != want {
		t.Errorf("keyOf(hello) = %q; AppendString = %q", got, want)
	}
	if got, want := keyOf(t, 42), string(AppendInt(nil, 42)); got != want {
		t.Errorf("keyOf(42) = %q; AppendInt = %q", got, want)
	}
	type named string
	if got, want := keyOf(t, named("hello")), "s5:hello"; got != want {
		t.Errorf("keyOf(named) = %q; want the readable %q", got, want)
	}
}

// A randomized check over a small domain, where collisions are likely if
// the encoding is ambiguous: keys are equal exactly when values are ==.
func TestInjective(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "1:", ":a", "1:a", "a1", ",", "0,", "s1:a"}
	floats := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5}
	byKey := map[string]mixed{}
	for range 20000 {
		m := mixed{
			S:    strs[r.IntN(len(strs))],
			N:    int8(r.IntN(5) - 2),
			U:    uint16(r.IntN(3)),
			F:    floats[r.IntN(len(floats))],
			B:    r.IntN(2) == 0,
			Arr:  [2]string{strs[r.IntN(len(strs))], strs[r.IntN(len(strs))]},
			In:   pair{strs[r.IntN(len(strs))], strs[r.IntN(len(strs))]},
			priv: r.IntN(2),
		}
		k := keyOf(t, m)
		if prev, ok := byKey[k]; ok && prev != m {
			t.Fatalf("%+v and %+v share the key %q", prev, m, k)
		}
		byKey[k] = m
	}
}

func TestUnkeyable(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[chan int](),
		reflect.TypeFor[func()](),
		reflect.TypeFor[unsafe.Pointer](),
		reflect.TypeFor[struct{ In struct{ C chan int } }](),
		reflect.TypeFor[*struct{ F func() }](),
		reflect.TypeFor[[]func()](),
	} {
		if _, err := For(typ); !errors.Is(err, ErrUnkeyable) {
			t.Errorf("For(%s) error = %v; want ErrUnkeyable", typ, err)
		}
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[any](), reflect.TypeFor[*int](), reflect.TypeFor[since](), reflect.TypeFor[private](),
		reflect.TypeFor[map[string][]int](), reflect.TypeFor[*node](),
	} {
		if _, err := For(typ); err != nil {
			t.Errorf("For(%s) = %v; want an encoder", typ, err)
		}
	}
	loop := &node{Name: "loop"}
	loop.Next = loop
	for _, v := range []any{func() {}, make(chan int), loop, map[string]any{"f": func() {}}, []any{1, make(chan int)}} {
		if _, err := Append(nil, v); !errors.Is(err, ErrUnkeyable) {
			t.Errorf("Append(%T) error = %v; want ErrUnkeyable", v, err)
		}
	}
}

// FuzzAppend: keys of strings and of pairs of strings never collide
// unless the values are equal.
func FuzzAppend(f *testing.F) {
	f.Add("a", "b", "a:b", "")
	f.Add("s1:a", "", "", "s1:a")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		x, y := pair{a, b}, pair{c, d}
		if (key(t, x) == key(t, y)) != (x == y) {
			t.Fatalf("key(%q) == key(%q) is %v; want %v", x, y, key(t, x) == key(t, y), x == y)
		}
		if (key(t, []string{a, b}) == key(t, []string{c, d})) != (x == y) {
			t.Fatalf("slices [%q %q] and [%q %q] disagree with ==", a, b, c, d)
		}
	})
}
