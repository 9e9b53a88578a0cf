package pongotag_test

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/pongotag"
)

type user struct {
	ID   int
	Name string
}

type group struct {
	ID   int
	Name string
}

type opaque struct{ id int }

// half has an unexported field that a method a template calls may read.
type half struct {
	Name string
	id   int
}

type keyed struct{ id int }

func (k keyed) CacheKey() string { return "keyed-" + string(rune('0'+k.id)) }

type node struct {
	Name string
	Next *node
}

func mustKey(t *testing.T, name string, vary ...any) string {
	t.Helper()
	k, err := pongotag.FragmentKey(name, vary...)
	if err != nil {
		t.Fatalf("FragmentKey(%q, %v): %v", name, vary, err)
	}
	return k
}

func TestFragmentKeysNeverCollide(t *testing.T) {
	// Each pair must give two different keys.
	pairs := []struct {
		name string
		a, b []any
	}{
		{"nok, Flask-Caching's join", []any{"a_b"}, []any{"a", "b"}},
		{"nok, separator inside a value", []any{"a:b"}, []any{"a", "b"}},
		{"nok, empty strings", []any{""}, []any{"", ""}},
		{"nok, no value vs an empty string", []any{}, []any{""}},
		{"nok, string vs number", []any{"1"}, []any{1}},
		{"nok, nil vs empty string", []any{nil}, []any{""}},
		{"nok, bool vs number", []any{true}, []any{1}},
		{"nok, two structs of one type", []any{user{1, "ann"}}, []any{user{2, "bob"}}},
		{"nok, struct fields shuffled", []any{user{1, "2"}}, []any{user{2, "1"}}},
		{"nok, same fields, other type", []any{user{1, "ann"}}, []any{group{1, "ann"}}},
		{"nok, struct pointers", []any{&user{1, "ann"}}, []any{&user{1, "bob"}}},
		{"nok, slice split", []any{[]string{"a", "b"}}, []any{[]string{"a"}, []string{"b"}}},
		{"nok, nested slices", []any{[]any{[]any{"a"}, "b"}}, []any{[]any{"a", []any{"b"}}}},
		{"nok, map entries", []any{map[string]int{"a": 1, "b": 2}}, []any{map[string]int{"a": 2, "b": 1}}},
		{"nok, bytes vs string", []any{[]byte("x")}, []any{"x"}},
		{"nok, float vs int", []any{1.0}, []any{1}},
		{"nok, times", []any{time.Unix(0, 0).UTC()}, []any{time.Unix(1, 0).UTC()}},
		{"nok, same instant, other zone", []any{time.Unix(0, 0).UTC()}, []any{time.Unix(0, 0).In(time.FixedZone("X", 3600))}},
		{"nok, Keyer", []any{keyed{1}}, []any{keyed{2}}},
		{"nok, TextMarshaler", []any{netip.MustParseAddr("10.0.0.1")}, []any{netip.MustParseAddr("10.0.0.2")}},
		{"nok, big unsigned", []any{uint64(math.MaxUint64)}, []any{int64(-1)}},
		{"nok, linked structs", []any{&node{"a", &node{"b", nil}}}, []any{&node{"a", &node{"c", nil}}}},
		{"nok, structs that differ in an unexported field", []any{half{"a", 1}}, []any{half{"a", 2}}},
		{"nok, structs with unexported fields only", []any{opaque{1}}, []any{opaque{2}}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			if a, b := mustKey(t, "k", p.a...), mustKey(t, "k", p.b...); a == b {
				t.Errorf("FragmentKey(k, %#v) == FragmentKey(k, %#v) == %q", p.a, p.b, a)
			}
		})
	}
	if mustKey(t, "a", "b") == mustKey(t, "a_b") || mustKey(t, "ab") == mustKey(t, "a", "b") {
		t.Errorf("the name and the vary-on values run together")
	}
}

func TestFragmentKeysAreByValue(t *testing.T) {
	// Each pair must give the same key.
	pairs := []struct {
		name string
		a, b any
	}{
		{"ok, integer types", 5, int64(5)},
		{"ok, unsigned", uint8(5), 5},
		{"ok, named integer", time.Weekday(3), 3},
		{"ok, pointer and value", &user{1, "ann"}, user{1, "ann"}},
		{"ok, equal structs", user{1, "ann"}, user{1, "ann"}},
		{"ok, map order", map[string]int{"a": 1, "b": 2, "c": 3}, map[string]int{"c": 3, "b": 2, "a": 1}},
		{"ok, negative zero", math.Copysign(0, -1), 0.0},
		{"ok, pongo2 value", pongo2.AsValue("x"), "x"},
		{"ok, nil pointer", (*user)(nil), nil},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			if a, b := mustKey(t, "k", p.a), mustKey(t, "k", p.b); a != b {
				t.Errorf("FragmentKey(k, %#v) = %q; FragmentKey(k, %#v) = %q; want equal", p.a, a, p.b, b)
			}
		})
	}
}

func TestFragmentKeyErrors(t *testing.T) {
	loop := &node{Name: "loop"}
	loop.Next = loop
	for _, v := range []any{func() {}, make(chan int), loop, map[string]any{"f": func() {}}, struct{ F func() }{}} {
		if _, err := pongotag.FragmentKey("k", v); !errors.Is(err, pongotag.ErrUnkeyable) {
			t.Errorf("FragmentKey(k, %T) error = %v; want ErrUnkeyable", v, err)
		}
	}
	if _, err := pongotag.FragmentKey(""); err == nil {
		t.Errorf("FragmentKey with no name: no error")
	}
}

func TestFragmentKeyShape(t *testing.T) {
	k := mustKey(t, "sidebar", 42)
	if !strings.HasPrefix(k, keyspace.Fragment+"n:sidebar:") {
		t.Errorf("key %q; want it to start with f:n:sidebar:", k)
	}
	long := mustKey(t, strings.Repeat("é", 100))
	if len(long) > 120 {
		t.Errorf("key of a long name is %d bytes: %q", len(long), long)
	}
}

// The template computes the keys FragmentKey computes, so code can delete
// what a template stored, and collisions are avoided in templates too.
func TestTemplateKeysMatchFragmentKey(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	tpl := mustParse(t, `{% cache 30 "card" who, n2 %}{{ next() }}{% endcache %}`)
	run := func(who any, n2 any) string {
		return render(t, tpl, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "who": who, "n2": n2})
	}
	if got := run(user{1, "ann"}, 7) + run(user{2, "bob"}, 7) + run(user{1, "ann"}, 7); got != "121" {
		t.Fatalf("renders = %q; want 121 (structs keyed by value)", got)
	}
	if err := pongotag.DeleteFragment(context.Background(), c, "card", user{1, "ann"}, int64(7)); err != nil {
		t.Fatal(err)
	}
	if got := run(user{1, "ann"}, 7) + run(user{2, "bob"}, 7); got != "32" {
		t.Errorf("after deleting ann's card = %q; want 32", got)
	}

	// Flask-Caching's collision, in a template.
	flat := mustParse(t, `{% cache 30 "x" a %}{{ next() }}{% endcache %}`)
	pair := mustParse(t, `{% cache 30 "x" a b %}{{ next() }}{% endcache %}`)
	one := render(t, flat, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "a": "a_b"})
	two := render(t, pair, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "a": "a", "b": "b"})
	if one == two {
		t.Errorf(`["a_b"] and ["a","b"] served the same fragment %q`, one)
	}
}

type since struct {
	User  string
	Since time.Time
}

// Memoize's argument keys and FragmentKey's vary-on values follow one set
// of rules: the same values are accepted and told apart by both. (Memoize
// used to panic on a time.Time field, which FragmentKey took.)
func TestMemoizeAndFragmentKeyAgree(t *testing.T) {
	c := echocache.New(nil)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	memo := func(f func()) (panicked any) {
		defer func() { panicked = recover() }()
		f()
		return nil
	}
	for _, tc := range []struct {
		name string
		arg  any
		ok   bool
		mk   func() // Memoize over the argument's type
	}{
		{"ok, time.Time field", since{"ann", t0}, true, func() {
			echocache.Memoize(c, "since", time.Minute, func(context.Context, since) (int, error) { return 1, nil })
		}},
		{"ok, pointer", &user{1, "ann"}, true, func() {
			echocache.Memoize(c, "ptr", time.Minute, func(context.Context, *user) (int, error) { return 1, nil })
		}},
		{"ok, unexported fields", half{"a", 1}, true, func() {
			echocache.Memoize(c, "half", time.Minute, func(context.Context, half) (int, error) { return 1, nil })
		}},
		{"ok, Keyer", keyed{1}, true, func() {
			echocache.Memoize(c, "keyed", time.Minute, func(context.Context, keyed) (int, error) { return 1, nil })
		}},
		{"nok, channel", make(chan int), false, func() {
			echocache.Memoize(c, "chan", time.Minute, func(context.Context, chan int) (int, error) { return 1, nil })
		}},
	} {
		_, keyErr := pongotag.FragmentKey("k", tc.arg)
		p := memo(tc.mk)
		if (keyErr == nil) != tc.ok || (p == nil) != tc.ok {
			t.Errorf("%s: FragmentKey error %v, Memoize panic %v; want both to accept: %v", tc.name, keyErr, p, tc.ok)
		}
	}
}
