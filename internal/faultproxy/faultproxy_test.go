package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
)

// start returns a proxy to the shared redis-server.
func start(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	opts, err := redis.ParseURL(servertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	return faultproxy.Start(t, opts.Addr)
}

// phase counts the requests that started in one mode of the proxy.
type phase struct {
	attempts, ok atomic.Int64
	minOK        atomic.Int64 // the fastest successful request, in ns
}

func (p *phase) record(err error, took time.Duration) {
	p.attempts.Add(1)
	if err != nil {
		return
	}
	p.ok.Add(1)
	for {
		old := p.minOK.Load()
		if old != 0 && old <= int64(took) || p.minOK.CompareAndSwap(old, int64(took)) {
			return
		}
	}
}

// TestModesUnderLoad switches the proxy through every mode while eight
// clients send INCRs through it: in Pass every request succeeds, in Stall
// and Drop none that started after the switch does, in Delay none is
// faster than the delay, and after each fault the clients recover. Each
// client's counter only grows: no reply reaches the wrong client.
func TestModesUnderLoad(t *testing.T) {
	p := start(t)
	c := redis.NewClient(&redis.Options{
		Addr: p.Addr(), PoolSize: 8, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
	})
	defer c.Close()

	var current atomic.Pointer[phase]
	current.Store(&phase{})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var foreign atomic.Int64
	const clients = 8
	base := time.Now().UnixNano()
	for w := range clients {
		key := fmt.Sprintf("faultproxy:%d:%d", base, w)
		floor := int64(w) * 1_000_000_000 // each client's counter lives in its own range
		if err := c.Set(t.Context(), key, floor, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			last := floor
			for ctx.Err() == nil {
				ph := current.Load()
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				n, err := c.Incr(rctx, key).Result()
				cancel()
				if ctx.Err() != nil {
					return
				}
				ph.record(err, time.Since(t0))
				switch {
				case err == nil && (n <= last || n >= floor+1_000_000_000):
					foreign.Add(1)
				case err == nil:
					last = n
				default:
					time.Sleep(5 * time.Millisecond) // pace the retries of a failing client
				}
			}
		})
	}
	defer func() {
		stop()
		wg.Wait()
	}()

	// enter switches the proxy, then starts counting a new phase: every
	// request counted there started after the switch.
	enter := func(switchTo func()) *phase {
		switchTo()
		ph := &phase{}
		current.Store(ph)
		return ph
	}
	// await waits until the phase has n requests of the kind counted.
	await := func(what string, n int64, count *atomic.Int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for count.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d after 30 s; want %d", what, count.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ph := current.Load()
	await("pass: successful requests", 100, &ph.ok)
	if got := ph.attempts.Load() - ph.ok.Load(); got != 0 {
		t.Errorf("pass: %d requests failed; want none", got)
	}

	ph = enter(p.Stall)
	await("stall: requests", 2*clients, &ph.attempts)
	if got := ph.ok.Load(); got != 0 {
		t.Errorf("stall: %d requests succeeded; want none", got)
	}

	ph = enter(p.Pass)
	await("pass after stall: successful requests", 100, &ph.ok)

	const delay = 100 * time.Millisecond
	ph = enter(func() { p.Delay(delay) })
	await("delay: successful requests", 2*clients, &ph.ok)
	if got := time.Duration(ph.minOK.Load()); got < delay {
		t.Errorf("delay %v: the fastest request took %v; want at least the delay", delay, got)
	}

	ph = enter(p.Drop)
	await("drop: requests", 2*clients, &ph.attempts)
	if got := ph.ok.Load(); got != 0 {
		t.Errorf("drop: %d requests succeeded; want none", got)
	}

	ph = enter(p.Pass)
	await("pass after drop: successful requests", 100, &ph.ok)

	if got := foreign.Load(); got != 0 {
		t.Errorf("%d replies were not the client's own next counter value", got)
	}
}

// TestStallHoldsThenDelivers checks that a stalled proxy accepts a new
// connection and reads its request, answers nothing, and delivers the
// request and its reply once switched back to Pass.
func TestStallHoldsThenDelivers(t *testing.T) {
	p := start(t)
	p.Stall()
	conn, r := dial(t, p.Addr())
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if line, err := r.ReadString('\n'); !isTimeout(err) {
		t.Fatalf("read from a stalled proxy = %q, %v; want a timeout", line, err)
	}
	p.Pass()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("read after Pass = %q, %v; want +PONG", line, err)
	}
}

// TestDelay checks that a reply comes no sooner than the delay.
func TestDelay(t *testing.T) {
	p := start(t)
	const delay = 150 * time.Millisecond
	p.Delay(delay)
	if m, d := p.Mode(); m != faultproxy.Delay || d != delay {
		t.Fatalf("Mode() = %v, %v; want delay, %v", m, d, delay)
	}
	conn, r := dial(t, p.Addr())
	t0 := time.Now()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("read = %q, %v; want +PONG", line, err)
	}
	if took := time.Since(t0); took < delay {
		t.Errorf("PING through a %v delay took %v", delay, took)
	}
}

// TestDrop checks that Drop closes an open connection and resets new ones,
// and that Pass lets new ones through again.
func TestDrop(t *testing.T) {
	p := start(t)
	open, r := dial(t, p.Addr())
	ping(t, open, r)
	p.Drop()
	if line, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read from a dropped connection = %q, %v; want it closed", line, err)
	}
	// The reset may come before the dial returns, or at the first read.
	if conn, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte("PING\r\n"))
		if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil || isTimeout(err) {
			t.Fatalf("read from a connection made while dropping = %q, %v; want it reset", line, err)
		}
	}
	p.Pass()
	conn, r3 := dial(t, p.Addr())
	ping(t, conn, r3)
}

// TestClose checks that Close ends held connections and stops listening.
func TestClose(t *testing.T) {
	p := start(t)
	p.Stall()
	conn, r := dial(t, p.Addr())
	_, _ = conn.Write([]byte("PING\r\n"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read after Close = %q, %v; want the connection closed", line, err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded; want it refused")
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[faultproxy.Mode]string{
		faultproxy.Pass: "pass", faultproxy.Stall: "stall", faultproxy.Delay: "delay", faultproxy.Drop: "drop", 9: "faultproxy.Mode(9)",
	} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q; want %q", int(m), got, want)
		}
	}
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

func ping(t *testing.T, conn net.Conn, r *bufio.Reader) {
	t.Helper()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+PONG" {
		t.Fatalf("PING = %q, %v; want +PONG", line, err)
	}
}

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// echoServer answers each line it reads with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr, line string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestProxy(t *testing.T) {
	p := faultproxy.Start(t, echoServer(t))

	got, err := roundTrip(p.Addr(), "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", got, "a line through the proxy")

	p.CutAfter(100)
	_, err = roundTrip(p.Addr(), strings.Repeat("x", 1000))
	require.Error(t, err, "a line longer than the limit must be cut")
	got, err = roundTrip(p.Addr(), "short")
	require.NoError(t, err)
	assert.Equal(t, "short", got, "a line under the limit passes")

	p.CutAfter(0)
	p.SetDown(true)
	_, err = roundTrip(p.Addr(), "hello")
	require.Error(t, err, "a connection while the proxy is down")
	p.SetDown(false)
	got, err = roundTrip(p.Addr(), strings.Repeat("y", 1000))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("y", 1000), got, "after SetDown(false) and without a limit")
}
