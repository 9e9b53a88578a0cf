// Package storetest is the conformance suite every [stores.Store] runs: the
// backends of package stores and any store an application writes itself.
//
// A backend's test opens fresh stores and hands them to [Run]:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) stores.Store {
//			s, err := mystore.New(mystore.Config{Prefix: storetest.Namespace(t)})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, storetest.Options{MaxValueSize: 1 << 20})
//	}
//
// The suite checks the contract written in package stores: hits, misses and
// empty values; TTL expiry and the DefaultTTL and NoExpiry rules; Add and
// Incr under concurrency; many-key calls with missing keys; binary values and
// hostile keys; a 5 MiB value; cancelled contexts; Clear keeping to its own
// namespace; slices that belong to the caller; and ErrClosed after Close.
// It also holds a store to the rules that keep a wrong value from being
// read: a refused Set or SetMany leaves the key a miss, never its previous
// value (see Failed writes in package stores); Incr keeps the entry's
// expiry whatever the signs of the value and the delta; and reading a value
// as a counter that is not one (Incr of "eggs", or of "05", "+5", "-0",
// " 5" and other forms that are not Redis's; see stores.Incrementer) fails
// with ErrNotInteger and leaves the entry, its value and its expiry, as
// they were. Give [Options.MaxValueSize] the backend's size limit (1 MiB
// in the example), or [Options.NoSizeLimit] the reason it has none: under
// CI=true a run with neither fails its refused-write check.
// It uses real time (the expiry checks wait about [Options.ShortTTL]), so it
// also runs against real servers.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// Options describes what a backend can and cannot do. The zero value is a
// backend without limits that honours contexts.
type Options struct {
	// MaxValueSize is the size in bytes of the largest value the backend
	// stores. A larger value must fail with an error wrapping
	// stores.ErrTooLarge and leave nothing stored under its key.
	// Optional. Default value 0 (no limit: the suite stores a 5 MiB value and
	// reads it back whole, and cannot check refused writes; see
	// NoSizeLimit).
	MaxValueSize int

	// NoSizeLimit says why this run has no MaxValueSize: the backend has no
	// size limit of its own, or another run of the suite on the same
	// backend sets one. With MaxValueSize 0 and no NoSizeLimit, the suite's
	// RefusedWrite check fails under CI (the environment variable CI set to
	// "true") and is only logged elsewhere, so that a backend that can
	// refuse a value is never let off the refused-write rule by omission.
	// Optional. Default value "" (no reason given).
	NoSizeLimit string

	// ShortTTL is the TTL of the entries the suite waits to see expire. A
	// backend with a coarse clock needs a longer one than a backend that
	// keeps nanoseconds; it must be long enough for a write followed by an
	// update of the same key to land before the entry expires (memcached,
	// which counts whole seconds, can expire a 1s entry at once).
	// Optional. Default value 2s.
	ShortTTL time.Duration

	// OpenWithDefaultTTL opens a fresh store, on a fresh namespace like open,
	// whose default TTL is def. The suite uses it to check that ttl ==
	// stores.DefaultTTL means def, that stores.NoExpiry overrides it, and
	// that Incr creates entries without expiry.
	// Optional. If nil, those checks are not run (the suite logs it).
	OpenWithDefaultTTL func(t *testing.T, def time.Duration) stores.Store

	// Plant writes key, with any value, into another namespace of the same
	// backend without going through the stores under test (for example a
	// plain SET of another prefix on the same redis). The suite calls Clear
	// and then PlantedExists, to prove that Clear left the key alone.
	// Optional. If nil, Clear is checked only against a second store
	// returned by open.
	Plant func(t *testing.T, key string)

	// PlantedExists reports whether a key written by Plant is still there.
	// Required when Plant is set.
	PlantedExists func(t *testing.T, key string) bool

	// IgnoresContext declares a store that never blocks and does not look at
	// its context. The suite then only checks that a cancelled context does
	// not break it.
	// Optional. Default value false: every operation given a cancelled
	// context must fail with an error wrapping context.Canceled (and one
	// given an expired deadline, context.DeadlineExceeded).
	IgnoresContext bool
}

const defaultShortTTL = 2 * time.Second

// Namespace returns a namespace (key prefix) unique to this test run, built
// from the test's name and random bytes, for backends that share a server
// between tests.
func Namespace(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "st:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// Run runs the conformance suite as subtests of t. open must return a fresh
// store on a fresh, unique namespace on every call (stores from two calls
// may share a server or a directory, and should, so that Clear is checked
// across namespaces). The suite closes every store it opens; Close must
// therefore tolerate being called twice.
func Run(t *testing.T, open func(t *testing.T) stores.Store, opt Options) {
	t.Helper()
	if opt.ShortTTL <= 0 {
		opt.ShortTTL = defaultShortTTL
	}
	if opt.Plant != nil && opt.PlantedExists == nil {
		t.Fatal("storetest: Options.Plant is set but Options.PlantedExists is nil")
	}
	s := &suite{open: open, opt: opt}
	t.Run("GetSetDelete", s.testGetSetDelete)
	t.Run("EmptyValueIsNotMiss", s.testEmptyValue)
	t.Run("BinaryValues", s.testBinaryValues)
	t.Run("Keys", s.testKeys)
	t.Run("LargeValue", s.testLargeValue)
	t.Run("RefusedWrite", s.testRefusedWrite)
	t.Run("Add", s.testAdd)
	t.Run("AddConcurrent", s.testAddConcurrent)
	t.Run("Incr", s.testIncr)
	t.Run("IncrConcurrent", s.testIncrConcurrent)
	t.Run("Many", s.testMany)
	t.Run("NoAliasing", s.testNoAliasing)
	t.Run("CancelledContext", s.testCancelledContext)
	t.Run("Clear", s.testClear)
	t.Run("ConcurrentMixed", s.testConcurrentMixed)
	t.Run("Close", s.testClose)
	// The expiry checks wait; they run in parallel with each other, and Run
	// returns only when they are done.
	t.Run("TTL", func(t *testing.T) {
		t.Run("Expiry", func(t *testing.T) { t.Parallel(); s.testExpiry(t) })
		t.Run("DefaultTTL", func(t *testing.T) { t.Parallel(); s.testDefaultTTL(t) })
	})
}

type suite struct {
	open func(t *testing.T) stores.Store
	opt  Options
}

// store opens a fresh store that is closed when the test ends.
func (s *suite) store(t *testing.T) stores.Store {
	t.Helper()
	st := s.open(t)
	require.NotNil(t, st, "open returned a nil store")
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// wait bounds the polling for an expiry: the TTL, a second of clock
// granularity on each side, and slack for a loaded machine.
func (s *suite) wait() time.Duration { return s.opt.ShortTTL + 5*time.Second }

func mustGet(t *testing.T, st stores.Store, key string) []byte {
	t.Helper()
	v, err := st.Get(t.Context(), key)
	require.NoError(t, err, "Get(%q)", key)
	return v
}

func requireMiss(t *testing.T, st stores.Store, key string) {
	t.Helper()
	v, err := st.Get(t.Context(), key)
	require.ErrorIs(t, err, stores.ErrNotFound, "Get(%q) = %q, %v; want ErrNotFound", key, v, err)
}

func present(t *testing.T, st stores.Store, key string) bool {
	t.Helper()
	_, err := st.Get(t.Context(), key)
	if errors.Is(err, stores.ErrNotFound) {
		return false
	}
	require.NoError(t, err, "Get(%q)", key)
	return true
}

func (s *suite) testGetSetDelete(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	requireMiss(t, st, "k")
	require.NoError(t, st.Set(ctx, "k", []byte("v1"), stores.DefaultTTL))
	assert.Equal(t, []byte("v1"), mustGet(t, st, "k"))

	require.NoError(t, st.Set(ctx, "k", []byte("v2"), time.Hour), "Set over an existing key")
	assert.Equal(t, []byte("v2"), mustGet(t, st, "k"))

	require.NoError(t, st.Set(ctx, "other", []byte("o"), stores.NoExpiry))
	require.NoError(t, st.Delete(ctx, "k"))
	requireMiss(t, st, "k")
	assert.Equal(t, []byte("o"), mustGet(t, st, "other"), "Delete removed another key")

	require.NoError(t, st.Delete(ctx, "k"), "Delete of an absent key")
	require.NoError(t, st.Delete(ctx, "never-set"), "Delete of a key never set")

	require.NoError(t, st.Set(ctx, "k", []byte("v3"), stores.DefaultTTL), "Set after Delete")
	assert.Equal(t, []byte("v3"), mustGet(t, st, "k"))
}

func (s *suite) testEmptyValue(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	require.NoError(t, st.Set(ctx, "empty", []byte{}, stores.DefaultTTL))
	v, err := st.Get(ctx, "empty")
	require.NoError(t, err, "Get of an empty value must be a hit")
	assert.Empty(t, v)

	require.NoError(t, st.Set(ctx, "nil", nil, stores.DefaultTTL))
	v, err = st.Get(ctx, "nil")
	require.NoError(t, err, "Get of a value set as nil must be a hit")
	assert.Empty(t, v)

	requireMiss(t, st, "absent")

	ok, err := st.Add(ctx, "empty", []byte("x"), stores.DefaultTTL)
	require.NoError(t, err)
	assert.False(t, ok, "Add over an empty value must not store: the key is present")

	got, err := stores.GetMany(ctx, st, []string{"empty", "nil", "absent"})
	require.NoError(t, err)
	assert.Contains(t, got, "empty", "GetMany must report an empty value as present")
	assert.Contains(t, got, "nil")
	assert.NotContains(t, got, "absent")
	assert.Empty(t, got["empty"])
}

// binaryValues holds values that trip up text protocols and encoders.
func binaryValues() map[string][]byte {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return map[string][]byte{
		"all-bytes":   all,
		"nul":         {0},
		"nuls":        {0, 0, 0, 'a', 0},
		"crlf":        []byte("line\r\nEND\r\n"),
		"proto":       []byte("VALUE k 0 1\r\nx\r\nEND\r\n"),
		"invalid-utf": {0xff, 0xfe, 0xc3, 0x28},
		"trailing-nl": []byte("v\n"),
		"spaces":      []byte("  "),
	}
}

func (s *suite) testBinaryValues(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	for key, val := range binaryValues() {
		require.NoError(t, st.Set(ctx, key, val, stores.DefaultTTL), "Set(%q)", key)
	}
	for key, val := range binaryValues() {
		assert.Equal(t, val, mustGet(t, st, key), "Get(%q)", key)
	}
	keys := make([]string, 0)
	for key := range binaryValues() {
		keys = append(keys, key)
	}
	got, err := stores.GetMany(ctx, st, keys)
	require.NoError(t, err)
	assert.Equal(t, binaryValues(), got, "GetMany of binary values")
}

// hostileKeys holds keys every backend must accept and keep apart.
func hostileKeys() []string {
	long := strings.Repeat("k", 300)
	return []string{
		"plain",
		"ключ-キー-🔑",
		"a key with spaces",
		" leading and trailing ",
		"ctl\x00nul\r\n\t\x7f",
		"\x01",
		long,
		long + "a", // two keys that share their first 300 bytes
		long + "b",
		strings.Repeat("é", 200), // 400 bytes of UTF-8
		"../../../../etc/passwd",
		"/abs/path",
		"C:\\windows\\path",
		"%2e%2e%2f",
		"*",
		"key:with:colons",
		"UPPER",
		"upper", // differs from UPPER only by case
		"\xff\xfe invalid utf-8",
	}
}

func (s *suite) testKeys(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	keys := hostileKeys()
	for i, key := range keys {
		require.NoError(t, st.Set(ctx, key, []byte(strconv.Itoa(i)), stores.DefaultTTL), "Set(%q)", key)
	}
	for i, key := range keys {
		assert.Equal(t, []byte(strconv.Itoa(i)), mustGet(t, st, key), "Get(%q): keys must never collide", key)
	}
	got, err := stores.GetMany(ctx, st, keys)
	require.NoError(t, err)
	for i, key := range keys {
		assert.Equal(t, []byte(strconv.Itoa(i)), got[key], "GetMany[%q]", key)
	}
	for _, key := range keys[:len(keys)/2] {
		require.NoError(t, st.Delete(ctx, key), "Delete(%q)", key)
	}
	for i, key := range keys {
		if i < len(keys)/2 {
			requireMiss(t, st, key)
		} else {
			assert.Equal(t, []byte(strconv.Itoa(i)), mustGet(t, st, key), "Get(%q) after deleting other keys", key)
		}
	}
	ok, err := st.Add(ctx, keys[0], []byte("added"), stores.DefaultTTL)
	require.NoError(t, err)
	assert.True(t, ok, "Add(%q) after Delete", keys[0])
	n, err := stores.Incr(ctx, st, keys[len(keys)-1]+"#n", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
}

func (s *suite) testLargeValue(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	max := s.opt.MaxValueSize
	if max > 0 && len(big) > max {
		err := st.Set(ctx, "big", big, stores.DefaultTTL)
		require.ErrorIs(t, err, stores.ErrTooLarge, "Set of a 5 MiB value above MaxValueSize %d", max)
		requireMiss(t, st, "big")
		over := big[:max+1]
		require.ErrorIs(t, st.Set(ctx, "over", over, stores.DefaultTTL), stores.ErrTooLarge, "Set of MaxValueSize+1 bytes")
		requireMiss(t, st, "over")
		ok, err := st.Add(ctx, "over", over, stores.DefaultTTL)
		require.ErrorIs(t, err, stores.ErrTooLarge, "Add of MaxValueSize+1 bytes")
		assert.False(t, ok)
		requireMiss(t, st, "over")
		// A value well under the limit is stored whole.
		half := big[:max/2]
		require.NoError(t, st.Set(ctx, "half", half, stores.DefaultTTL), "Set of MaxValueSize/2 bytes")
		assert.True(t, bytes.Equal(half, mustGet(t, st, "half")), "Get of MaxValueSize/2 bytes")
		return
	}
	require.NoError(t, st.Set(ctx, "big", big, stores.DefaultTTL), "Set of a 5 MiB value")
	got := mustGet(t, st, "big")
	require.Len(t, got, len(big))
	assert.True(t, bytes.Equal(big, got), "Get of a 5 MiB value returned different bytes")
	require.NoError(t, st.Delete(ctx, "big"))
	requireMiss(t, st, "big")
}

// testRefusedWrite checks that a value the store refuses removes the value
// the write was meant to replace.
func (s *suite) testRefusedWrite(t *testing.T) {
	max := s.opt.MaxValueSize
	if max <= 0 {
		switch {
		case s.opt.NoSizeLimit != "":
			t.Logf("storetest: no MaxValueSize (%s); refused writes are not checked in this run", s.opt.NoSizeLimit)
		case os.Getenv("CI") == "true":
			t.Fatal("storetest: Options.MaxValueSize is 0 and Options.NoSizeLimit gives no reason: run the suite with the backend's size limit (or say why it has none) so that refused writes are checked")
		default:
			t.Log("storetest: Options.MaxValueSize is 0 and Options.NoSizeLimit gives no reason; refused writes are not checked (under CI=true this fails)")
		}
		return
	}
	st := s.store(t)
	ctx := t.Context()
	over := make([]byte, max+1)

	require.NoError(t, st.Set(ctx, "k", []byte("old"), stores.DefaultTTL))
	require.ErrorIs(t, st.Set(ctx, "k", over, stores.DefaultTTL), stores.ErrTooLarge, "Set of MaxValueSize+1 bytes over a stored key")
	requireMiss(t, st, "k") // not "old": the write did not store the new value

	require.NoError(t, st.Set(ctx, "a", []byte("old a"), stores.NoExpiry))
	require.NoError(t, st.Set(ctx, "b", []byte("old b"), stores.NoExpiry))
	err := stores.SetMany(ctx, st, map[string][]byte{"a": []byte("new a"), "b": over}, stores.DefaultTTL)
	require.ErrorIs(t, err, stores.ErrTooLarge, "SetMany with one item of MaxValueSize+1 bytes")
	requireMiss(t, st, "b")
	if v, err := st.Get(ctx, "a"); !errors.Is(err, stores.ErrNotFound) {
		require.NoError(t, err)
		assert.Equal(t, "new a", string(v), "after a refused SetMany, a key it did not store kept its previous value")
	}

	// The key works again afterwards.
	require.NoError(t, st.Set(ctx, "k", []byte("new"), stores.DefaultTTL))
	assert.Equal(t, []byte("new"), mustGet(t, st, "k"))
}

func (s *suite) testAdd(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	ok, err := st.Add(ctx, "k", []byte("first"), stores.DefaultTTL)
	require.NoError(t, err)
	assert.True(t, ok, "Add of an absent key")
	ok, err = st.Add(ctx, "k", []byte("second"), stores.DefaultTTL)
	require.NoError(t, err)
	assert.False(t, ok, "Add of a present key")
	assert.Equal(t, []byte("first"), mustGet(t, st, "k"), "Add of a present key changed it")

	require.NoError(t, st.Delete(ctx, "k"))
	ok, err = st.Add(ctx, "k", []byte("third"), stores.NoExpiry)
	require.NoError(t, err)
	assert.True(t, ok, "Add after Delete")
	assert.Equal(t, []byte("third"), mustGet(t, st, "k"))
}

// parallel runs n goroutines that start together and collects their errors.
func parallel(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func (s *suite) testAddConcurrent(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	const n = 50
	for round := range 2 {
		key := fmt.Sprintf("lock-%d", round)
		var mu sync.Mutex
		var winners []int
		errs := parallel(n, func(i int) error {
			ok, err := st.Add(ctx, key, []byte(strconv.Itoa(i)), stores.DefaultTTL)
			if ok {
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			}
			return err
		})
		for i, err := range errs {
			require.NoError(t, err, "Add in goroutine %d", i)
		}
		require.Len(t, winners, 1, "Add by %d goroutines at once: want exactly one winner, got %v", n, winners)
		assert.Equal(t, []byte(strconv.Itoa(winners[0])), mustGet(t, st, key), "the stored value is not the winner's")
	}
}

func (s *suite) testIncr(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	n, err := stores.Incr(ctx, st, "up", 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "Incr of an absent key starts at delta")
	n, err = stores.Incr(ctx, st, "up", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(6), n)
	assert.Equal(t, []byte("6"), mustGet(t, st, "up"), "Get after Incr returns the decimal value")

	n, err = stores.Incr(ctx, st, "down", -3)
	require.NoError(t, err)
	assert.Equal(t, int64(-3), n, "Incr of an absent key with a negative delta")
	n, err = stores.Incr(ctx, st, "down", -4)
	require.NoError(t, err)
	assert.Equal(t, int64(-7), n, "Incr below zero")
	n, err = stores.Incr(ctx, st, "down", 10)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "Incr from negative back above zero")
	assert.Equal(t, []byte("3"), mustGet(t, st, "down"))

	n, err = stores.Incr(ctx, st, "zero", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(0), n, "Incr by 0 of an absent key")
	assert.Equal(t, []byte("0"), mustGet(t, st, "zero"), "Incr by 0 creates the key")

	require.NoError(t, st.Set(ctx, "set", []byte("41"), stores.DefaultTTL))
	n, err = stores.Incr(ctx, st, "set", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(42), n, "Incr of a value written with Set")

	require.NoError(t, st.Set(ctx, "neg", []byte("-10"), stores.DefaultTTL))
	n, err = stores.Incr(ctx, st, "neg", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(-7), n, "Incr of a negative value written with Set")

	require.NoError(t, st.Set(ctx, "big", []byte(strconv.FormatInt(math.MaxInt64-1, 10)), stores.DefaultTTL))
	n, err = stores.Incr(ctx, st, "big", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), n)
	_, err = stores.Incr(ctx, st, "big", 1)
	require.ErrorIs(t, err, stores.ErrNotInteger, "Incr past MaxInt64 must not wrap")
	assert.Equal(t, []byte(strconv.FormatInt(math.MaxInt64, 10)), mustGet(t, st, "big"), "a failed Incr changed the value")

	// The counter form every store accepts (stores.Incrementer): Redis's.
	for _, c := range []struct {
		val   string
		delta int64
		want  int64
	}{
		{"-9223372036854775808", 1, math.MinInt64 + 1},
		{"0", -1, -1},
		{"100", -1, 99},
		{"-10", 5, -5},
		{"10", -5, 5},
	} {
		key := "form-" + hex.EncodeToString([]byte(c.val))
		require.NoError(t, st.Set(ctx, key, []byte(c.val), stores.DefaultTTL))
		n, err := stores.Incr(ctx, st, key, c.delta)
		require.NoError(t, err, "Incr of %q by %d", c.val, c.delta)
		assert.Equal(t, c.want, n, "Incr of %q by %d", c.val, c.delta)
		assert.Equal(t, strconv.FormatInt(c.want, 10), string(mustGet(t, st, key)),
			"Get after Incr of %q by %d must read the plain decimal (no padding)", c.val, c.delta)
	}

	for _, bad := range []string{
		"abc", "1.5", "12abc", "\x00",
		// Not Redis's form, though some parsers take them.
		"05", "+5", "-0", "00", " 5", "5 ", "5\n", "\t5", "", "-", "+",
		"0x10", "1e3", "1_000", "\u0665",
		// Outside int64.
		"9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
	} {
		key := "bad-" + hex.EncodeToString([]byte(bad))
		require.NoError(t, st.Set(ctx, key, []byte(bad), stores.DefaultTTL))
		_, err := stores.Incr(ctx, st, key, 1)
		require.ErrorIs(t, err, stores.ErrNotInteger, "Incr of %q", bad)
		assert.Equal(t, []byte(bad), mustGet(t, st, key), "a failed Incr of %q changed the value", bad)
	}
}

func (s *suite) testIncrConcurrent(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	const n, each = 50, 10
	// Even goroutines add 3, odd ones subtract 1, so the total crosses zero
	// on the way and a lost update of either sign shows.
	errs := parallel(n, func(i int) error {
		delta := int64(3)
		if i%2 == 1 {
			delta = -1
		}
		for range each {
			if _, err := stores.Incr(ctx, st, "counter", delta); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		require.NoError(t, err, "Incr in goroutine %d", i)
	}
	want := int64(n/2*each*3 - n/2*each)
	n2, err := stores.Incr(ctx, st, "counter", 0)
	require.NoError(t, err)
	assert.Equal(t, want, n2, "Incr by %d goroutines at once lost updates", n)
}

func (s *suite) testMany(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	got, err := stores.GetMany(ctx, st, nil)
	require.NoError(t, err, "GetMany of no keys")
	assert.Empty(t, got)
	got, err = stores.GetMany(ctx, st, []string{"a", "b"})
	require.NoError(t, err, "GetMany of absent keys")
	assert.Empty(t, got)

	require.NoError(t, stores.SetMany(ctx, st, nil, stores.DefaultTTL), "SetMany of no items")
	require.NoError(t, stores.DeleteMany(ctx, st, nil), "DeleteMany of no keys")

	items := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3"), "e": {}}
	require.NoError(t, stores.SetMany(ctx, st, items, stores.DefaultTTL))
	for k, v := range items {
		assert.Equal(t, v, mustGet(t, st, k), "Get(%q) after SetMany", k)
	}

	got, err = stores.GetMany(ctx, st, []string{"a", "missing", "c", "e", "also-missing"})
	require.NoError(t, err, "GetMany with missing keys")
	assert.Equal(t, map[string][]byte{"a": []byte("1"), "c": []byte("3"), "e": {}}, normalize(got))

	require.NoError(t, stores.DeleteMany(ctx, st, []string{"a", "missing", "e"}), "DeleteMany with missing keys")
	got, err = stores.GetMany(ctx, st, []string{"a", "b", "c", "e"})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"b": []byte("2"), "c": []byte("3")}, got)

	// Many keys at once, so backends that batch cross their batch size.
	const n = 1200
	big := make(map[string][]byte, n)
	keys := make([]string, 0, n+1)
	for i := range n {
		k := fmt.Sprintf("m%04d", i)
		big[k] = []byte(strconv.Itoa(i))
		keys = append(keys, k)
	}
	keys = append(keys, "missing")
	require.NoError(t, stores.SetMany(ctx, st, big, time.Hour))
	got, err = stores.GetMany(ctx, st, keys)
	require.NoError(t, err)
	assert.Equal(t, big, got, "GetMany of %d keys", n)
	require.NoError(t, stores.DeleteMany(ctx, st, keys))
	got, err = stores.GetMany(ctx, st, keys)
	require.NoError(t, err)
	assert.Empty(t, got, "GetMany after DeleteMany of %d keys", n)
}

// normalize turns nil values into empty ones so that maps compare by content.
func normalize(m map[string][]byte) map[string][]byte {
	for k, v := range m {
		if v == nil {
			m[k] = []byte{}
		}
	}
	return m
}

func (s *suite) testNoAliasing(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()

	val := []byte("original")
	require.NoError(t, st.Set(ctx, "k", val, stores.DefaultTTL))
	copy(val, "MUTATED!")
	assert.Equal(t, []byte("original"), mustGet(t, st, "k"), "the store kept the caller's slice given to Set")

	got := mustGet(t, st, "k")
	copy(got, "MUTATED!")
	assert.Equal(t, []byte("original"), mustGet(t, st, "k"), "Get returned a slice aliasing the stored value")

	a, b := mustGet(t, st, "k"), mustGet(t, st, "k")
	a[0] = 'X'
	assert.Equal(t, byte('o'), b[0], "two Gets returned the same memory")

	items := map[string][]byte{"m": []byte("many")}
	require.NoError(t, stores.SetMany(ctx, st, items, stores.DefaultTTL))
	items["m"][0] = 'X'
	many, err := stores.GetMany(ctx, st, []string{"m", "k"})
	require.NoError(t, err)
	assert.Equal(t, []byte("many"), many["m"], "the store kept the caller's slice given to SetMany")
	copy(many["m"], "XXXX")
	copy(many["k"], "XXXXXXXX")
	assert.Equal(t, []byte("many"), mustGet(t, st, "m"), "GetMany returned a slice aliasing the stored value")
	assert.Equal(t, []byte("original"), mustGet(t, st, "k"), "GetMany returned a slice aliasing the stored value")

	add := []byte("added")
	ok, err := st.Add(ctx, "a", add, stores.DefaultTTL)
	require.NoError(t, err)
	require.True(t, ok)
	copy(add, "XXXXX")
	assert.Equal(t, []byte("added"), mustGet(t, st, "a"), "the store kept the caller's slice given to Add")
}

func (s *suite) testCancelledContext(t *testing.T) {
	st := s.store(t)
	require.NoError(t, st.Set(t.Context(), "k", []byte("v"), stores.DefaultTTL))

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()

	ops := map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error { _, err := st.Get(ctx, "k"); return err },
		"Set": func(ctx context.Context) error { return st.Set(ctx, "k2", []byte("v"), stores.DefaultTTL) },
		"Add": func(ctx context.Context) error {
			_, err := st.Add(ctx, "k3", []byte("v"), stores.DefaultTTL)
			return err
		},
		"Delete":  func(ctx context.Context) error { return st.Delete(ctx, "k4") },
		"GetMany": func(ctx context.Context) error { _, err := stores.GetMany(ctx, st, []string{"k", "x"}); return err },
		"SetMany": func(ctx context.Context) error {
			return stores.SetMany(ctx, st, map[string][]byte{"k5": []byte("v")}, stores.DefaultTTL)
		},
		"DeleteMany": func(ctx context.Context) error { return stores.DeleteMany(ctx, st, []string{"k6", "k7"}) },
		"Incr":       func(ctx context.Context) error { _, err := stores.Incr(ctx, st, "n", 1); return err },
		"Clear":      func(ctx context.Context) error { return st.Clear(ctx) },
	}
	for _, name := range []string{"Get", "Set", "Add", "Delete", "GetMany", "SetMany", "DeleteMany", "Incr", "Clear"} {
		op := ops[name]
		if s.opt.IgnoresContext {
			// Declared to ignore contexts: it must not fail because of one.
			require.NoError(t, op(cancelled), "%s with a cancelled context on a store that ignores contexts", name)
			continue
		}
		err := op(cancelled)
		require.ErrorIs(t, err, context.Canceled, "%s with a cancelled context", name)
		err = op(expired)
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s with an expired deadline", name)
	}
	if !s.opt.IgnoresContext {
		// The failed Clear did not clear.
		assert.Equal(t, []byte("v"), mustGet(t, st, "k"), "Clear with a cancelled context removed entries")
	}
	// The store still works with a live context.
	require.NoError(t, st.Set(t.Context(), "after", []byte("ok"), stores.DefaultTTL))
	assert.Equal(t, []byte("ok"), mustGet(t, st, "after"))
}

func (s *suite) testClear(t *testing.T) {
	st := s.store(t)
	other := s.store(t)
	ctx := t.Context()

	keys := append(hostileKeys(), "a", "b", "c")
	for _, k := range keys {
		require.NoError(t, st.Set(ctx, k, []byte("mine"), stores.NoExpiry))
		require.NoError(t, other.Set(ctx, k, []byte("other"), stores.NoExpiry))
	}
	_, err := stores.Incr(ctx, st, "counter", 7)
	require.NoError(t, err)
	planted := "planted-" + hex.EncodeToString([]byte(t.Name()))
	if s.opt.Plant != nil {
		s.opt.Plant(t, planted)
		require.True(t, s.opt.PlantedExists(t, planted), "PlantedExists is false right after Plant")
	}

	require.NoError(t, st.Clear(ctx))

	for _, k := range append(keys, "counter") {
		requireMiss(t, st, k)
	}
	for _, k := range keys {
		assert.Equal(t, []byte("other"), mustGet(t, other, k), "Clear removed %q from another namespace", k)
	}
	if s.opt.Plant != nil {
		assert.True(t, s.opt.PlantedExists(t, planted), "Clear removed a key planted in another namespace")
	}

	// The store is usable after Clear, and a second Clear is harmless.
	require.NoError(t, st.Set(ctx, "a", []byte("again"), stores.DefaultTTL))
	assert.Equal(t, []byte("again"), mustGet(t, st, "a"))
	n, err := stores.Incr(ctx, st, "counter", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "Incr after Clear starts again")
	ok, err := st.Add(ctx, "b", []byte("added"), stores.DefaultTTL)
	require.NoError(t, err)
	assert.True(t, ok, "Add after Clear")
	require.NoError(t, st.Clear(ctx))
	require.NoError(t, st.Clear(ctx), "Clear of an empty namespace")
	requireMiss(t, st, "a")
	assert.Equal(t, []byte("other"), mustGet(t, other, "a"))
}

func (s *suite) testConcurrentMixed(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	const n = 16
	errs := parallel(n, func(i int) error {
		for j := range 30 {
			key := fmt.Sprintf("k%d", j%5)
			val := []byte(fmt.Sprintf("%d-%d", i, j))
			var err error
			switch j % 6 {
			case 0:
				err = st.Set(ctx, key, val, time.Minute)
			case 1:
				_, err = st.Get(ctx, key)
			case 2:
				_, err = st.Add(ctx, key, val, time.Minute)
			case 3:
				_, err = stores.GetMany(ctx, st, []string{"k0", "k1", "k2"})
			case 4:
				err = stores.SetMany(ctx, st, map[string][]byte{key: val, "x": val}, time.Minute)
			case 5:
				err = st.Delete(ctx, key)
			}
			if err != nil && !errors.Is(err, stores.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		require.NoError(t, err, "goroutine %d", i)
	}
	// Every surviving value is one some goroutine wrote, whole.
	for j := range 5 {
		key := fmt.Sprintf("k%d", j)
		v, err := st.Get(ctx, key)
		if errors.Is(err, stores.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		assert.Regexp(t, `^\d+-\d+$`, string(v), "Get(%q) returned a torn value", key)
	}
}

func (s *suite) testClose(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	require.NoError(t, st.Set(ctx, "k", []byte("v"), stores.DefaultTTL))
	require.NoError(t, st.Close())

	_, err := st.Get(ctx, "k")
	assert.ErrorIs(t, err, stores.ErrClosed, "Get after Close")
	assert.ErrorIs(t, st.Set(ctx, "k", []byte("v"), stores.DefaultTTL), stores.ErrClosed, "Set after Close")
	_, err = st.Add(ctx, "k2", []byte("v"), stores.DefaultTTL)
	assert.ErrorIs(t, err, stores.ErrClosed, "Add after Close")
	assert.ErrorIs(t, st.Delete(ctx, "k"), stores.ErrClosed, "Delete after Close")
	_, err = stores.GetMany(ctx, st, []string{"k"})
	assert.ErrorIs(t, err, stores.ErrClosed, "GetMany after Close")
	assert.ErrorIs(t, stores.SetMany(ctx, st, map[string][]byte{"k": nil}, stores.DefaultTTL), stores.ErrClosed, "SetMany after Close")
	assert.ErrorIs(t, stores.DeleteMany(ctx, st, []string{"k"}), stores.ErrClosed, "DeleteMany after Close")
	_, err = stores.Incr(ctx, st, "n", 1)
	assert.ErrorIs(t, err, stores.ErrClosed, "Incr after Close")
	assert.ErrorIs(t, st.Clear(ctx), stores.ErrClosed, "Clear after Close")

	err = st.Close()
	if err != nil {
		assert.ErrorIs(t, err, stores.ErrClosed, "a second Close may only return nil or ErrClosed")
	}
}

func (s *suite) testExpiry(t *testing.T) {
	st := s.store(t)
	ctx := t.Context()
	ttl := s.opt.ShortTTL

	// Keys that must survive are written before the keys that must expire:
	// had they wrongly kept a short TTL, they would be gone first.
	require.NoError(t, st.Set(ctx, "reset", []byte("v"), ttl))
	require.NoError(t, st.Set(ctx, "forever", []byte("v"), stores.NoExpiry))
	require.NoError(t, st.Set(ctx, "default", []byte("v"), stores.DefaultTTL)) // this store's default is no expiry
	require.NoError(t, st.Set(ctx, "long", []byte("v"), time.Hour))

	require.NoError(t, st.Set(ctx, "short", []byte("v"), ttl))
	ok, err := st.Add(ctx, "added", []byte("v"), ttl)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, stores.SetMany(ctx, st, map[string][]byte{"many1": []byte("v"), "many2": []byte("v")}, ttl))
	// Incr keeps the expiry, whatever the signs of the value and the
	// delta, and a refused Incr leaves it too.
	incrs := []struct {
		key, start  string
		delta, want int64
	}{
		{"counter", "1", 1, 2},
		{"counter-down", "10", -1, 9},
		{"counter-cross", "3", -5, -2},
		{"counter-neg", "-5", 1, -4},
		{"counter-neg-down", "-5", -1, -6},
	}
	for _, in := range incrs {
		require.NoError(t, st.Set(ctx, in.key, []byte(in.start), ttl))
		n, err := stores.Incr(ctx, st, in.key, in.delta)
		require.NoError(t, err, "Incr(%q = %s, %d)", in.key, in.start, in.delta)
		require.Equal(t, in.want, n, "Incr(%q = %s, %d)", in.key, in.start, in.delta)
	}
	require.NoError(t, st.Set(ctx, "not-counter", []byte("eggs"), ttl))
	_, err = stores.Incr(ctx, st, "not-counter", -1)
	require.ErrorIs(t, err, stores.ErrNotInteger)
	assert.Equal(t, []byte("eggs"), mustGet(t, st, "not-counter"), "a refused Incr changed the value")
	// Set replaces the TTL of the entry it overwrites.
	require.NoError(t, st.Set(ctx, "reset", []byte("v2"), stores.NoExpiry))

	expiring := []string{"short", "added", "many1", "many2", "not-counter"}
	for _, in := range incrs {
		expiring = append(expiring, in.key)
	}
	var left []string
	require.Eventually(t, func() bool {
		left = left[:0]
		for _, k := range expiring {
			if present(t, st, k) {
				left = append(left, k)
			}
		}
		return len(left) == 0
	}, s.wait(), 20*time.Millisecond, "entries with a %v TTL did not expire (Incr must keep the TTL): %v", ttl, &left)

	for _, k := range []string{"reset", "forever", "default", "long"} {
		assert.True(t, present(t, st, k), "%q expired with the short-TTL entries", k)
	}
	got, err := stores.GetMany(ctx, st, append(expiring, "forever"))
	require.NoError(t, err)
	assert.Equal(t, []string{"forever"}, mapKeys(got), "GetMany returned expired entries")

	// An expired key is absent for Add and Incr.
	ok, err = st.Add(ctx, "added", []byte("again"), stores.NoExpiry)
	require.NoError(t, err)
	assert.True(t, ok, "Add over an expired entry")
	n, err := stores.Incr(ctx, st, "counter", 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "Incr of an expired entry starts at delta")
}

func mapKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (s *suite) testDefaultTTL(t *testing.T) {
	if s.opt.OpenWithDefaultTTL == nil {
		t.Log("storetest: Options.OpenWithDefaultTTL is nil; default-TTL checks not run")
		return
	}
	ttl := s.opt.ShortTTL
	st := s.opt.OpenWithDefaultTTL(t, ttl)
	require.NotNil(t, st, "OpenWithDefaultTTL returned a nil store")
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()

	// Survivors first, as in testExpiry.
	_, err := stores.Incr(ctx, st, "counter", 1)
	require.NoError(t, err)
	require.NoError(t, st.Set(ctx, "forever", []byte("v"), stores.NoExpiry))
	ok, err := st.Add(ctx, "added-forever", []byte("v"), stores.NoExpiry)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, st.Set(ctx, "long", []byte("v"), time.Hour))

	require.NoError(t, st.Set(ctx, "default", []byte("v"), stores.DefaultTTL))
	ok, err = st.Add(ctx, "added-default", []byte("v"), stores.DefaultTTL)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, stores.SetMany(ctx, st, map[string][]byte{"many": []byte("v")}, stores.DefaultTTL))

	expiring := []string{"default", "added-default", "many"}
	require.Eventually(t, func() bool {
		for _, k := range expiring {
			if present(t, st, k) {
				return false
			}
		}
		return true
	}, s.wait(), 20*time.Millisecond, "entries written with DefaultTTL on a store whose default is %v did not expire", ttl)

	for _, k := range []string{"forever", "added-forever", "long"} {
		assert.True(t, present(t, st, k), "%q expired with the default-TTL entries", k)
	}
	assert.True(t, present(t, st, "counter"), "an entry created by Incr must not expire (it got the default TTL)")
}
