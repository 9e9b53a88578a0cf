package echocache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// logRecorder is a Logger that keeps what it was given.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Warnf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestNewWithConfigRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nok, negative DefaultTTL", Config{DefaultTTL: -2 * time.Second}, "DefaultTTL"},
		{"nok, negative StoreTimeout", Config{StoreTimeout: -1}, "StoreTimeout"},
		{"nok, negative BreakerCooldown", Config{BreakerCooldown: -1}, "BreakerCooldown"},
		{"nok, BreakerCooldown over MaxBreakerCooldown", Config{BreakerCooldown: MaxBreakerCooldown + time.Millisecond}, "over MaxBreakerCooldown"},
		{"nok, negative LogInterval", Config{LogInterval: -1}, "LogInterval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWithConfig(nil, tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("ok, NoExpiry DefaultTTL", func(t *testing.T) {
		c, err := NewWithConfig(nil, Config{DefaultTTL: stores.NoExpiry})
		require.NoError(t, err)
		require.Equal(t, stores.NoExpiry, c.DefaultTTL())
	})
}

func TestZeroCacheHasNoStoreUntilInit(t *testing.T) {
	var c Cache
	_, err := c.core().Get(context.Background(), "k")
	require.ErrorIs(t, err, ErrNoStore)
	require.ErrorIs(t, c.Clear(context.Background()), ErrNoStore)
	require.Equal(t, DefaultTTL, c.DefaultTTL())

	c.Init(newMWTestStore())
	require.NoError(t, c.core().Set(context.Background(), "k", []byte("v"), 0))
	v, err := c.core().Get(context.Background(), "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
}

func TestBreakerOpensAfterThresholdAndClosesWhenStoreAnswers(t *testing.T) {
	s := newMWTestStore()
	s.local = false // a networked store: timeouts and the breaker apply
	logs := &logRecorder{}
	c, err := NewWithConfig(s, Config{BreakerThreshold: 3, Logger: logs, LogInterval: time.Hour})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)
	ctx := context.Background()

	s.setFail(errMWStoreDown)
	for i := 0; i < 3; i++ {
		_, err := c.core().Get(ctx, "k")
		require.ErrorIs(t, err, errMWStoreDown, "call %d reaches the store", i)
	}
	// Open: the store is no longer called.
	before := s.count("get")
	for i := 0; i < 10; i++ {
		_, err := c.core().Get(ctx, "k")
		require.ErrorIs(t, err, ErrStoreUnavailable)
	}
	require.Equal(t, before, s.count("get"), "an open breaker must not call the store")
	require.EqualValues(t, 13, c.Stats().StoreErrors)

	// A probe (what the prober does every cooldown) that the store answers
	// closes the breaker.
	s.setFail(nil)
	c.core().ProbeNow()
	require.Equal(t, before+1, s.count("get"), "one probe")
	require.False(t, c.core().BreakerOpen(), "a successful probe closes the breaker")
	_, err = c.core().Get(ctx, "k")
	require.ErrorIs(t, err, stores.ErrNotFound)

	// Rate limit: 13 failures gave one line (the first), and the
	// breaker's opening and closing each gave theirs, which a burst of
	// store errors must not hide.
	require.Equal(t, []string{
		"echocache: store error (serving uncached): test store: down",
		"echocache: store failed 3 times in a row; skipping it, probing it every 1h0m0s: test store: down",
		"echocache: store answers again; circuit breaker closed",
	}, logs.all())
}

func TestBreakerDisabledWithNegativeThreshold(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	c, err := NewWithConfig(s, Config{BreakerThreshold: -1})
	require.NoError(t, err)
	s.setFail(errMWStoreDown)
	for i := 0; i < 20; i++ {
		_, err := c.core().Get(context.Background(), "k")
		require.ErrorIs(t, err, errMWStoreDown)
	}
	require.Equal(t, 20, s.count("get"))
}

func TestCallerCancellationDoesNotTripBreaker(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	c, err := NewWithConfig(s, Config{BreakerThreshold: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.core().Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, c.core().BreakerOpen())
	require.Zero(t, c.Stats().StoreErrors)
}

func TestLocalStoreErrorsAreCounted(t *testing.T) {
	m, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	logs := &logRecorder{}
	c, err := NewWithConfig(m, Config{Logger: logs})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	_, err = c.core().Get(context.Background(), "k")
	require.ErrorIs(t, err, stores.ErrClosed)
	require.EqualValues(t, 1, c.Stats().StoreErrors)
	require.Len(t, logs.all(), 1)
}

// A store server that accepts connections and never answers: every call is
// bounded by StoreTimeout, then the breaker skips the store entirely.
func TestHungRedisIsBoundedByStoreTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never answered
			mu.Unlock()
		}
	}()
	s, err := stores.Open(context.Background(), "redis://"+l.Addr().String()+"/0?prefix=hung:")
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	c, err := NewWithConfig(s, Config{StoreTimeout: 50 * time.Millisecond, BreakerThreshold: 2})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)

	for i := 0; i < 2; i++ {
		_, err := c.core().Get(context.Background(), "k")
		require.Error(t, err)
		require.False(t, errors.Is(err, stores.ErrNotFound))
	}
	_, err = c.core().Get(context.Background(), "k")
	require.ErrorIs(t, err, ErrStoreUnavailable, "after two timeouts the breaker skips the hung server")
}

func TestRefusalsDoNotOpenBreaker(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	c, err := NewWithConfig(s, Config{BreakerThreshold: 2})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)
	ctx := context.Background()
	for _, refusal := range []error{stores.ErrTooLarge, stores.ErrNotInteger} {
		s.setFail(fmt.Errorf("test store: %w", refusal))
		for i := 0; i < 5; i++ {
			require.ErrorIs(t, c.core().Set(ctx, "big", []byte("v"), 0), refusal)
		}
	}
	s.setFail(nil)
	require.NoError(t, c.core().Set(ctx, "small", []byte("v"), 0))
	require.False(t, c.core().BreakerOpen(), "refused values must not open the breaker")
	require.Zero(t, c.Stats().StoreErrors, "a refusal is not a store error")
	require.EqualValues(t, 5, c.Stats().Bypasses[BypassTooLarge], "values too large are counted as bypasses")
}

// A store spread over several servers reports one dead server with a
// stores.NodeError: its keys miss, and the breaker stays closed so that the
// keys of the healthy servers keep being served.
func TestBreakerIgnoresNodeErrors(t *testing.T) {
	s := newMWTestStore()
	s.local = false
	c, err := NewWithConfig(s, Config{BreakerThreshold: 2, LogInterval: time.Hour})
	require.NoError(t, err)
	c.core().SetProbeInterval(time.Hour)
	ctx := context.Background()

	s.setFail(&stores.NodeError{Node: "127.0.0.1:1", Err: errMWStoreDown})
	for i := 0; i < 10; i++ {
		_, err := c.core().Get(ctx, "k")
		require.ErrorIs(t, err, stores.ErrNodeDown, "call %d", i)
		require.ErrorIs(t, err, errMWStoreDown, "call %d keeps its cause", i)
	}
	require.False(t, c.core().BreakerOpen(), "node errors must not open the breaker")
	require.EqualValues(t, 10, c.Stats().StoreErrors, "node errors are counted")

	// A failure of the whole store still opens it.
	s.setFail(errMWStoreDown)
	for i := 0; i < 2; i++ {
		_, _ = c.core().Get(ctx, "k")
	}
	_, err = c.core().Get(ctx, "k")
	require.ErrorIs(t, err, ErrStoreUnavailable)
}

func TestNodeErrorMessage(t *testing.T) {
	err := error(&stores.NodeError{Node: "10.0.0.1:11211", Keys: []string{"a"}, Err: errMWStoreDown})
	require.Equal(t, "stores: server 10.0.0.1:11211: "+errMWStoreDown.Error(), err.Error())
	require.ErrorIs(t, fmt.Errorf("wrapped: %w", err), stores.ErrNodeDown)
	require.Equal(t, "stores: server x: unavailable", (&stores.NodeError{Node: "x"}).Error())
}
