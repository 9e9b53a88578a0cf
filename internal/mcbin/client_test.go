package mcbin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// countingDialer dials TCP and counts the connections it opened. It
// returns the *net.TCPConn itself, so connections are checked before reuse.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// uniq returns a key no other test or run uses.
func uniq(t testing.TB, name string) string {
	return fmt.Sprintf("mcbin-test:%s:%s:%d", t.Name(), name, time.Now().UnixNano())
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"nok, no address", Config{}, "Config.Addr is required"},
		{"nok, no port", Config{Addr: "localhost"}, "is not host:port"},
		{"nok, password without user", Config{Addr: "h:1", Password: "p"}, "Password is set without a Username"},
		{"nok, NUL in password", Config{Addr: "h:1", Username: "u", Password: "a\x00b"}, "must not contain NUL"},
		{"nok, negative timeout", Config{Addr: "h:1", Timeout: -1}, "must not be negative"},
		{"nok, negative idle", Config{Addr: "h:1", MaxIdleConns: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%+v) = %v, %v; want an error containing %q", tt.cfg, c, err, tt.wantErr)
			}
			if tt.cfg.Password != "" && strings.Contains(err.Error(), tt.cfg.Password) {
				t.Errorf("New's error %q shows the password", err)
			}
		})
	}
	for _, cfg := range []Config{{Addr: "127.0.0.1:11211"}, {Addr: "/run/memcached.sock"}, {Addr: "[::1]:1", Username: "u"}} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v) error: %v; want a client", cfg, err)
		}
	}
}

// servers returns the servers every operation is tested on: a plain
// memcached and a SASL one, with the client configuration of each.
func servers(t *testing.T) map[string]Config {
	return map[string]Config{
		"plain": {Addr: plainAddr(t)},
		"sasl":  saslConfig(t, memcachedSASL(t)),
	}
}

func TestOperations(t *testing.T) {
	for name, cfg := range servers(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("Get", func(t *testing.T) { testGet(t, cfg) })
			t.Run("CAS", func(t *testing.T) { testCAS(t, cfg) })
			t.Run("AddReplace", func(t *testing.T) { testAddReplace(t, cfg) })
			t.Run("DeleteTouch", func(t *testing.T) { testDeleteTouch(t, cfg) })
			t.Run("Expiration", func(t *testing.T) { testExpiration(t, cfg) })
			t.Run("Counters", func(t *testing.T) { testCounters(t, cfg) })
			t.Run("TooLarge", func(t *testing.T) { testTooLarge(t, cfg) })
			t.Run("GetMulti", func(t *testing.T) { testGetMulti(t, cfg) })
			t.Run("SetMulti", func(t *testing.T) { testSetMulti(t, cfg) })
			t.Run("DeleteMulti", func(t *testing.T) { testDeleteMulti(t, cfg) })
			t.Run("BadKey", func(t *testing.T) { testBadKey(t, cfg) })
			t.Run("Version", func(t *testing.T) { testVersion(t, cfg) })
		})
	}
}

func testGet(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	miss := uniq(t, "miss")
	if _, err := c.Get(ctx, miss); !errors.Is(err, ErrNotFound) || !IsServerError(err) || IsTransport(err) {
		t.Fatalf("Get(absent) error = %v (server %v, transport %v); want ErrNotFound, a server answer", err, IsServerError(err), IsTransport(err))
	}
	for _, v := range [][]byte{{}, []byte("hello"), []byte("line\r\nEND\r\n\x00\xff"), bytes.Repeat([]byte{'x'}, 100<<10)} {
		// Binary keys may hold any bytes, spaces and line ends included.
		key := uniq(t, "k e y\r\n")
		cas, err := c.Set(ctx, Item{Key: key, Value: v, Flags: 0xdeadbeef})
		if err != nil || cas == 0 {
			t.Fatalf("Set(%d bytes) = %d, %v; want a CAS", len(v), cas, err)
		}
		it, err := c.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get after Set: %v", err)
		}
		if !bytes.Equal(it.Value, v) || it.Flags != 0xdeadbeef || it.CAS != cas || it.Key != key {
			t.Fatalf("Get = {Key %q, %d bytes, Flags %#x, CAS %d}; want {%q, %d bytes, 0xdeadbeef, %d}", it.Key, len(it.Value), it.Flags, it.CAS, key, len(v), cas)
		}
	}
}

func testCAS(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	key := uniq(t, "k")
	cas1, err := c.Set(ctx, Item{Key: key, Value: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	cas2, err := c.Set(ctx, Item{Key: key, Value: []byte("v2"), CAS: cas1})
	if err != nil || cas2 == cas1 {
		t.Fatalf("Set with the current CAS = %d, %v; want a new CAS", cas2, err)
	}
	if _, err := c.Set(ctx, Item{Key: key, Value: []byte("v3"), CAS: cas1}); !errors.Is(err, ErrExists) {
		t.Fatalf("Set with a stale CAS error = %v; want ErrExists", err)
	}
	if _, err := c.Replace(ctx, Item{Key: key, Value: []byte("v3"), CAS: cas1}); !errors.Is(err, ErrExists) {
		t.Fatalf("Replace with a stale CAS error = %v; want ErrExists", err)
	}
	if it, _ := c.Get(ctx, key); string(it.Value) != "v2" {
		t.Fatalf("after the refused CAS writes Get = %q; want \"v2\"", it.Value)
	}
	if _, err := c.Set(ctx, Item{Key: uniq(t, "absent"), Value: []byte("v"), CAS: cas2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Set with a CAS on an absent key error = %v; want ErrNotFound", err)
	}
}

func testAddReplace(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	key := uniq(t, "k")
	if _, err := c.Replace(ctx, Item{Key: key, Value: []byte("r")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replace(absent) error = %v; want ErrNotFound", err)
	}
	if _, err := c.Add(ctx, Item{Key: key, Value: []byte("a")}); err != nil {
		t.Fatalf("Add(absent) error = %v", err)
	}
	if _, err := c.Add(ctx, Item{Key: key, Value: []byte("b")}); !errors.Is(err, ErrExists) {
		t.Fatalf("Add(present) error = %v; want ErrExists", err)
	}
	if _, err := c.Replace(ctx, Item{Key: key, Value: []byte("r"), Flags: 7}); err != nil {
		t.Fatalf("Replace(present) error = %v", err)
	}
	if it, _ := c.Get(ctx, key); string(it.Value) != "r" || it.Flags != 7 {
		t.Fatalf("Get = %q flags %d; want \"r\" flags 7", it.Value, it.Flags)
	}
}

func testDeleteTouch(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	key := uniq(t, "k")
	if err := c.Delete(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(absent) error = %v; want ErrNotFound", err)
	}
	if err := c.Touch(ctx, key, 60); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch(absent) error = %v; want ErrNotFound", err)
	}
	if _, err := c.Set(ctx, Item{Key: key, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch(ctx, key, 60); err != nil {
		t.Fatalf("Touch(present) error = %v", err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatalf("Delete(present) error = %v", err)
	}
	if _, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete error = %v; want ErrNotFound", err)
	}
}

// pastAbsolute is an expiration read as an absolute Unix time in 1970
// (memcached protocol.txt: more than 30 days is absolute): already expired.
const pastAbsolute = 30*24*3600 + 1

func testExpiration(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	past, month := uniq(t, "past"), uniq(t, "month")
	if _, err := c.Set(ctx, Item{Key: past, Value: []byte("v"), Expiration: pastAbsolute}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, Item{Key: month, Value: []byte("v"), Expiration: 30 * 24 * 3600}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, past); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an item set with expiration 30 days + 1 s (absolute, 1970) error = %v; want ErrNotFound", err)
	}
	if _, err := c.Get(ctx, month); err != nil {
		t.Errorf("Get of an item set with expiration 30 days (relative) error = %v; want a hit", err)
	}
	if err := c.Touch(ctx, month, pastAbsolute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, month); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Touch to 1970 error = %v; want ErrNotFound", err)
	}
}

func testCounters(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	key := uniq(t, "n")
	steps := []struct {
		name      string
		op        func(ctx context.Context, key string, delta, initial uint64, exp uint32) (uint64, error)
		delta     uint64
		initial   uint64
		exp       uint32
		want      uint64
		wantErr   error
		wantStore string
	}{
		{"absent with NoCreate", c.Incr, 1, 0, NoCreate, 0, ErrNotFound, ""},
		{"absent is created with initial, delta not applied", c.Incr, 3, 10, 0, 10, nil, "10"},
		{"incr", c.Incr, 5, 0, 0, 15, nil, "15"},
		{"decr", c.Decr, 4, 0, 0, 11, nil, ""},
		{"decr stops at 0", c.Decr, 100, 0, 0, 0, nil, ""},
		{"incr from 0", c.Incr, 2, 0, NoCreate, 2, nil, ""},
	}
	for _, s := range steps {
		got, err := s.op(ctx, key, s.delta, s.initial, s.exp)
		if !errors.Is(err, s.wantErr) || (err == nil && got != s.want) {
			t.Fatalf("%s: = %d, %v; want %d, %v", s.name, got, err, s.want, s.wantErr)
		}
		if s.wantStore != "" {
			if it, _ := c.Get(ctx, key); string(it.Value) != s.wantStore {
				t.Fatalf("%s: Get = %q; want %q", s.name, it.Value, s.wantStore)
			}
		}
	}

	wrap := uniq(t, "wrap")
	if _, err := c.Set(ctx, Item{Key: wrap, Value: []byte("18446744073709551615")}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Incr(ctx, wrap, 2, 0, 0); err != nil || got != 1 {
		t.Errorf("Incr(2^64-1, 2) = %d, %v; want 1 (counters are unsigned 64-bit and wrap)", got, err)
	}

	text := uniq(t, "text")
	if _, err := c.Set(ctx, Item{Key: text, Value: []byte("not a number")}); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func(context.Context, string, uint64, uint64, uint32) (uint64, error){"Incr": c.Incr, "Decr": c.Decr} {
		if _, err := op(ctx, text, 1, 0, 0); !errors.Is(err, ErrNonNumeric) || !IsServerError(err) {
			t.Errorf("%s on a non-numeric value error = %v; want ErrNonNumeric", name, err)
		}
	}

	gone := uniq(t, "gone")
	if got, err := c.Incr(ctx, gone, 1, 7, pastAbsolute); err != nil || got != 7 {
		t.Fatalf("Incr(absent, initial 7, expired) = %d, %v; want 7", got, err)
	}
	if _, err := c.Get(ctx, gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a counter created with an expiration in 1970 error = %v; want ErrNotFound (the expiration is applied)", err)
	}
}

func testTooLarge(t *testing.T, cfg Config) {
	ctx := context.Background()
	d := &countingDialer{}
	cfg.DialContext = d.DialContext
	c := newClient(t, cfg)
	key := uniq(t, "big")
	if _, err := c.Set(ctx, Item{Key: key, Value: make([]byte, 2<<20)}); !errors.Is(err, ErrTooLarge) || !IsServerError(err) {
		t.Fatalf("Set of 2 MiB (server item size 1 MiB) error = %v; want ErrTooLarge", err)
	}
	if _, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after a refused Set error = %v; want ErrNotFound", err)
	}
	if n := d.n.Load(); n != 1 {
		t.Errorf("dialled %d connections; want 1: a status answer keeps the connection", n)
	}
}

func testGetMulti(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	if err := c.GetMulti(ctx, nil, func(int, Item) { t.Error("fn called for no keys") }); err != nil {
		t.Fatalf("GetMulti(no keys) = %v", err)
	}
	// 3000 keys of ~60 bytes are more than one 64 KiB batch.
	keys := make([]string, 3000)
	want := map[int]string{}
	for i := range keys {
		keys[i] = uniq(t, fmt.Sprint(i))
		if i%3 != 0 {
			want[i] = fmt.Sprintf("value %d %s", i, bytes.Repeat([]byte{'v'}, 2048))
			if _, err := c.Set(ctx, Item{Key: keys[i], Value: []byte(want[i]), Flags: uint32(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys = append(keys, keys[1]) // a repeated key is answered twice
	want[len(keys)-1] = want[1]
	got := map[int]string{}
	err := c.GetMulti(ctx, keys, func(i int, it Item) {
		if _, dup := got[i]; dup {
			t.Errorf("fn called twice for index %d", i)
		}
		flags := uint32(i)
		if i == len(keys)-1 {
			flags = 1
		}
		if it.Key != keys[i] || it.Flags != flags || it.CAS == 0 {
			t.Errorf("item %d = {Key %q, Flags %d, CAS %d}; want {%q, %d, non-zero}", i, it.Key, it.Flags, it.CAS, keys[i], flags)
		}
		got[i] = string(it.Value)
	})
	if err != nil {
		t.Fatalf("GetMulti error = %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("GetMulti gave %d items; want %d", len(got), len(want))
	}
	for i, v := range want {
		if got[i] != v {
			t.Fatalf("GetMulti item %d = %.20q…; want %.20q…", i, got[i], v)
		}
	}
}

func testSetMulti(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	items := make([]Item, 40)
	keys := make([]string, len(items))
	for i := range items {
		keys[i] = uniq(t, fmt.Sprint(i))
		items[i] = Item{Key: keys[i], Value: bytes.Repeat([]byte{byte('a' + i%26)}, 100<<10), Flags: uint32(i)}
	}
	if err := c.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti of 40 × 100 KiB error = %v", err)
	}
	n := 0
	if err := c.GetMulti(ctx, keys, func(i int, it Item) {
		n++
		if !bytes.Equal(it.Value, items[i].Value) || it.Flags != uint32(i) {
			t.Errorf("item %d read back differs", i)
		}
	}); err != nil || n != len(items) {
		t.Fatalf("GetMulti after SetMulti: %d items, %v; want %d", n, err, len(items))
	}

	items[7].Value = make([]byte, 2<<20)
	items[8].Value = []byte("new")
	err := c.SetMulti(ctx, items)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), keys[7]) {
		t.Fatalf("SetMulti with one 2 MiB value error = %v; want ErrTooLarge naming %q", err, keys[7])
	}
	if it, err := c.Get(ctx, keys[8]); err != nil || string(it.Value) != "new" {
		t.Fatalf("item after the refused one = %q, %v; want \"new\"", it.Value, err)
	}
}

func testDeleteMulti(t *testing.T, cfg Config) {
	ctx := context.Background()
	c := newClient(t, cfg)
	var keys []string
	for i := range 30 {
		key := uniq(t, fmt.Sprint(i))
		keys = append(keys, key)
		if i%3 == 0 {
			continue // absent: not an error
		}
		if _, err := c.Set(ctx, Item{Key: key, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	keep := uniq(t, "keep")
	if _, err := c.Set(ctx, Item{Key: keep, Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMulti(ctx, keys); err != nil {
		t.Fatalf("DeleteMulti of 20 present and 10 absent keys error = %v; want nil", err)
	}
	n := 0
	if err := c.GetMulti(ctx, append(keys, keep), func(i int, it Item) {
		n++
		if it.Key != keep {
			t.Errorf("%q is still there after DeleteMulti", it.Key)
		}
	}); err != nil || n != 1 {
		t.Fatalf("GetMulti after DeleteMulti: %d items, %v; want only %q", n, err, keep)
	}
	if err := c.DeleteMulti(ctx, []string{"ok", ""}); !errors.Is(err, ErrBadKey) {
		t.Errorf("DeleteMulti with an empty key error = %v; want ErrBadKey", err)
	}
}

func testBadKey(t *testing.T, cfg Config) {
	ctx := context.Background()
	d := &countingDialer{}
	cfg.DialContext = d.DialContext
	c := newClient(t, cfg)
	for _, key := range []string{"", strings.Repeat("k", 251)} {
		if _, err := c.Get(ctx, key); !errors.Is(err, ErrBadKey) || IsServerError(err) || IsTransport(err) {
			t.Errorf("Get(%d-byte key) error = %v; want ErrBadKey", len(key), err)
		}
		if _, err := c.Set(ctx, Item{Key: key}); !errors.Is(err, ErrBadKey) {
			t.Errorf("Set(%d-byte key) error = %v; want ErrBadKey", len(key), err)
		}
		if err := c.GetMulti(ctx, []string{"ok", key}, func(int, Item) {}); !errors.Is(err, ErrBadKey) {
			t.Errorf("GetMulti with a %d-byte key error = %v; want ErrBadKey", len(key), err)
		}
	}
	if _, err := c.Set(ctx, Item{Key: strings.Repeat("k", 250), Value: []byte("v")}); err != nil {
		t.Errorf("Set(250-byte key) error = %v; want success", err)
	}
}

func testVersion(t *testing.T, cfg Config) {
	c := newClient(t, cfg)
	v, err := c.Version(context.Background())
	if err != nil || v == "" || strings.ContainsAny(v, "\r\n") {
		t.Fatalf("Version() = %q, %v; want a version", v, err)
	}
}

func TestSASLRefusals(t *testing.T) {
	s := saslConfig(t, memcachedSASL(t))
	const pass = "Wr0ng-Pa55word-sentinel"
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nok, wrong password", Config{Addr: s.Addr, Username: s.Username, Password: pass}, "refused user"},
		{"nok, unknown user", Config{Addr: s.Addr, Username: "nobody", Password: pass}, "refused user"},
		{"nok, no credentials", Config{Addr: s.Addr}, "no Username is configured"},
		{"nok, server without SASL", Config{Addr: plainAddr(t), Username: s.Username, Password: pass}, "does not support SASL"},
		{"nok, server without PLAIN", Config{Addr: cramOnly(t), Username: saslUser, Password: pass}, `offers SASL mechanisms ["CRAM-MD5"], not PLAIN`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.cfg)
			calls := map[string]func() error{
				"Get":  func() error { _, err := c.Get(ctx, "k"); return err },
				"Set":  func() error { _, err := c.Set(ctx, Item{Key: "k"}); return err },
				"Incr": func() error { _, err := c.Incr(ctx, "k", 1, 0, 0); return err },
				"GetMulti": func() error {
					return c.GetMulti(ctx, []string{"a", "b"}, func(int, Item) { t.Error("fn called") })
				},
			}
			if tt.cfg.Username != "" {
				// memcached answers Version before authentication; with
				// credentials it is the first call of a new connection.
				calls["Version"] = func() error { _, err := c.Version(ctx); return err }
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, ErrAuth) || !IsServerError(err) || IsTransport(err) {
					t.Errorf("%s error = %v; want ErrAuth, a server answer", name, err)
					continue
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s error = %q; want it to say %q", name, err, tt.want)
				}
				if strings.Contains(err.Error(), pass) {
					t.Errorf("%s error %q shows the password", name, err)
				}
			}
		})
	}
}

// TestRestartUsedAtOnce fills the pool, kills and restarts the server, and
// runs concurrent calls: not one may fail on a connection the old server
// held, Incr (never retried) included.
func TestRestartUsedAtOnce(t *testing.T) {
	for _, kind := range []string{"plain", "sasl"} {
		t.Run(kind, func(t *testing.T) {
			var srv *servertest.Server
			cfg := Config{MaxIdleConns: 16}
			if kind == "plain" {
				srv = startMemcached(t)
			} else {
				srv, cfg.Username, cfg.Password = startMemcachedSASL(t), saslUser, saslPass
			}
			cfg.Addr = srv.Addr()
			c := newClient(t, cfg)
			load := func(round int) []error {
				var mu sync.Mutex
				var errs []error
				var wg sync.WaitGroup
				for g := range 16 {
					wg.Go(func() {
						ctx := context.Background()
						for i := range 20 {
							key := fmt.Sprintf("restart:%d:%d", g, i)
							var err error
							// Incr first: it is never retried, so only the
							// check before reuse keeps it off stale connections.
							switch i % 4 {
							case 0:
								_, err = c.Incr(ctx, key+"n", 1, 1, 0)
							case 1:
								_, err = c.Set(ctx, Item{Key: key, Value: []byte("v")})
							case 2:
								_, err = c.Get(ctx, key)
								if errors.Is(err, ErrNotFound) {
									err = nil
								}
							case 3:
								err = c.GetMulti(ctx, []string{key, key + "x"}, func(int, Item) {})
							}
							if err != nil {
								mu.Lock()
								errs = append(errs, fmt.Errorf("round %d, goroutine %d, call %d: %w", round, g, i, err))
								mu.Unlock()
							}
						}
					})
				}
				wg.Wait()
				return errs
			}
			if errs := load(1); len(errs) > 0 {
				t.Fatalf("%d of 320 calls before the restart failed; first: %v", len(errs), errs[0])
			}
			c.mu.Lock()
			idle := len(c.idle)
			c.mu.Unlock()
			if idle < 2 {
				t.Fatalf("%d idle connections after concurrent load; want several", idle)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			if errs := load(2); len(errs) > 0 {
				t.Fatalf("%d of 320 calls after the restart failed (pool held %d connections of the old server); first: %v", len(errs), idle, errs[0])
			}
		})
	}
}

// opaqueConn hides the *net.TCPConn, so the client cannot peek at it, as
// with TLS or a wrapping dialer: stale connections are found by writing.
type opaqueConn struct{ net.Conn }

// TestRetryOnFreshConnection shows the second line of defence, for
// connections that cannot be checked: an idempotent call on a connection
// the old server held is sent again, once, on a new connection; Incr is
// not, and its failure drops every older idle connection.
func TestRetryOnFreshConnection(t *testing.T) {
	srv := startMemcached(t)
	c := newClient(t, Config{Addr: srv.Addr(), MaxIdleConns: 8, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return opaqueConn{nc}, nil
	}})
	ctx := context.Background()
	fill := func() {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for range 20 {
					if _, err := c.Set(ctx, Item{Key: fmt.Sprint("retry", g), Value: []byte("v")}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	fill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			if _, err := c.Get(ctx, fmt.Sprint("retry", g)); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after the restart error = %v; want ErrNotFound from the new, empty server", err)
			}
		})
	}
	wg.Wait()

	fill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Incr(ctx, "retry-counter", 1, 1, 0)
	if !IsTransport(err) {
		t.Fatalf("Incr on a connection of the old server error = %v; want a transport error (Incr is never retried)", err)
	}
	if got, err := c.Incr(ctx, "retry-counter", 1, 1, 0); err != nil || got != 1 {
		t.Fatalf("second Incr = %d, %v; want 1: the first failure drops the old idle connections", got, err)
	}
}

// serve runs a loopback server that handles each connection with handle,
// until the test ends.
func serve(t *testing.T, handle func(nc net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				handle(nc)
			})
		}
	})
	return l.Addr().String()
}

// blackHole is a loopback server that reads requests but never answers,
// like a wedged memcached. It reports each request's first bytes on got.
func blackHole(t *testing.T) (addr string, got <-chan struct{}) {
	ch := make(chan struct{}, 100)
	addr = serve(t, func(nc net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	return addr, ch
}

func TestDeadlinesAndCancellation(t *testing.T) {
	addr, _ := blackHole(t)
	t.Run("nok, context deadline", func(t *testing.T) {
		c := newClient(t, Config{Addr: addr, Timeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Get(ctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) || !IsTransport(err) {
			t.Fatalf("Get on a server that never answers error = %v; want context.DeadlineExceeded, a transport error", err)
		}
	})
	t.Run("nok, Config.Timeout", func(t *testing.T) {
		c := newClient(t, Config{Addr: addr, Timeout: 50 * time.Millisecond})
		_, err := c.Incr(context.Background(), "k", 1, 0, 0)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !IsTransport(err) {
			t.Fatalf("Incr on a server that never answers error = %v; want os.ErrDeadlineExceeded, a transport error", err)
		}
	})
	t.Run("nok, cancelled during I/O", func(t *testing.T) {
		addr, got := blackHole(t)
		c := newClient(t, Config{Addr: addr, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.GetMulti(ctx, []string{"a", "b"}, func(int, Item) {})
		}()
		<-got // the request reached the server
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || IsTransport(err) || IsServerError(err) {
			t.Fatalf("GetMulti cancelled while waiting error = %v; want context.Canceled, neither transport nor server", err)
		}
	})
	t.Run("nok, cancelled before", func(t *testing.T) {
		d := &countingDialer{}
		c := newClient(t, Config{Addr: addr, DialContext: d.DialContext})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Set(ctx, Item{Key: "k"}); !errors.Is(err, context.Canceled) || d.n.Load() != 0 {
			t.Fatalf("Set with a cancelled context error = %v after %d dials; want context.Canceled, no dial", err, d.n.Load())
		}
	})
	t.Run("nok, nothing listens", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		c := newClient(t, Config{Addr: addr})
		if _, err := c.Version(context.Background()); !IsTransport(err) {
			t.Fatalf("Version with nothing listening error = %v; want a transport error", err)
		}
	})
}

// TestLongCalls covers calls under a cancellable context that outlast
// watchAfter, the early deadline after which their context is watched:
// their I/O goes on where it stopped, and a cancellation from then on
// interrupts it at once.
func TestLongCalls(t *testing.T) {
	value := bytes.Repeat([]byte("late "), 1000)
	t.Run("ok, an answer after watchAfter", func(t *testing.T) {
		// The first request is answered at once, the second late, on the
		// same connection: the second call starts with the first one's
		// early deadline.
		addr := serve(t, func(nc net.Conn) {
			req := make([]byte, 4096)
			for late := false; ; late = true {
				n, err := nc.Read(req)
				if err != nil || n < headerLen {
					return
				}
				out := reply(req[:n], StatusOK, []byte{0, 0, 0, 7}, nil, value)
				if late {
					time.Sleep(2 * watchAfter) // past the client's early deadline
					_, _ = nc.Write(out[:headerLen+2])
					time.Sleep(2 * watchAfter) // and past it again within the reply
					out = out[headerLen+2:]
				}
				if _, err := nc.Write(out); err != nil {
					return
				}
			}
		})
		c := newClient(t, Config{Addr: addr, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, when := range []string{"at once", "late"} {
			it, err := c.Get(ctx, "k")
			if err != nil || !bytes.Equal(it.Value, value) || it.Flags != 7 {
				t.Fatalf("Get of an answer sent %s = %d bytes, flags %d, %v; want the %d bytes, flags 7", when, len(it.Value), it.Flags, err, len(value))
			}
		}
	})
	t.Run("ok, a write blocked past watchAfter", func(t *testing.T) {
		big := bytes.Repeat([]byte{'b'}, 32<<20) // more than the sockets' buffers hold
		got := make(chan int, 1)
		addr := serve(t, func(nc net.Conn) {
			time.Sleep(2 * watchAfter) // the client's write blocks meanwhile
			br := bufio.NewReader(nc)
			var hdr [headerLen]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			n, _ := br.Discard(int(binary.BigEndian.Uint32(hdr[8:12])))
			got <- n
			_, _ = nc.Write(reply(hdr[:], StatusOK, nil, nil, nil))
			_, _ = br.ReadByte() // until the client closes
		})
		c := newClient(t, Config{Addr: addr, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := c.Set(ctx, Item{Key: "big", Value: big}); err != nil {
			t.Fatalf("Set of %d bytes to a server that reads late: %v", len(big), err)
		}
		if n := <-got; n != 8+3+len(big) {
			t.Fatalf("the server read a body of %d bytes; want %d", n, 8+3+len(big))
		}
	})
	t.Run("ok, a write blocked past watchAfter, on a connection that cannot resume", func(t *testing.T) {
		// A wrapped connection (TLS, say) is not resumed after a
		// deadline: its call gets its real deadline at once.
		big := bytes.Repeat([]byte{'b'}, 32<<20)
		addr := serve(t, func(nc net.Conn) {
			time.Sleep(2 * watchAfter)
			br := bufio.NewReader(nc)
			var hdr [headerLen]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			_, _ = br.Discard(int(binary.BigEndian.Uint32(hdr[8:12])))
			_, _ = nc.Write(reply(hdr[:], StatusOK, nil, nil, nil))
			_, _ = br.ReadByte()
		})
		var d net.Dialer
		c := newClient(t, Config{Addr: addr, Timeout: time.Minute, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			return &stickyConn{Conn: nc}, nil
		}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := c.Set(ctx, Item{Key: "big", Value: big}); err != nil {
			t.Fatalf("Set of %d bytes over a wrapped connection to a server that reads late: %v", len(big), err)
		}
	})
	t.Run("nok, cancelled after watchAfter", func(t *testing.T) {
		addr, got := blackHole(t)
		c := newClient(t, Config{Addr: addr, Timeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Get(ctx, "k")
			done <- err
		}()
		<-got                      // the request reached the server
		time.Sleep(2 * watchAfter) // the context is watched from now on
		cancel()
		// Unwatched, the call would end only by its one-hour deadline.
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) || IsTransport(err) {
				t.Fatalf("Get cancelled after %v error = %v; want context.Canceled, not a transport error", 2*watchAfter, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("Get cancelled after %v still waits a minute later", 2*watchAfter)
		}
	})
}

// scripted is a loopback server that reads one request and answers with
// reply(request).
func scripted(t *testing.T, reply func(req []byte) []byte) string {
	return serve(t, func(nc net.Conn) {
		buf := make([]byte, 64<<10)
		n, err := nc.Read(buf)
		if err != nil || n < headerLen {
			return
		}
		_, _ = nc.Write(reply(buf[:n]))
		_, _ = nc.Read(buf) // until the client closes
	})
}

// cramOnly is a loopback server that answers each request on a
// connection as a memcached -S offering only CRAM-MD5 would: SASL Auth
// PLAIN is refused, SASL List Mechs names CRAM-MD5. (A real one cannot be
// started here: servertest checks every server it starts by logging in
// with PLAIN.)
func cramOnly(t *testing.T) string {
	return serve(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for {
			var hdr [headerLen]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			var out []byte
			switch hdr[1] {
			case opSASLAuth:
				out = reply(hdr[:], StatusAuthError, nil, nil, []byte("Auth failure."))
			case opSASLListMechs:
				out = reply(hdr[:], StatusOK, nil, nil, []byte("CRAM-MD5"))
			default:
				out = reply(hdr[:], StatusAuthError, nil, nil, []byte("Auth failure."))
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
}

// reply builds a response header with the request's opcode and opaque.
func reply(req []byte, status Status, extras, key, value []byte) []byte {
	b := appendHeader(nil, req[1], len(key), len(extras), len(extras)+len(key)+len(value), uint32(req[12])<<24|uint32(req[13])<<16|uint32(req[14])<<8|uint32(req[15]), 1)
	b[0] = magicResponse
	b[6], b[7] = byte(status>>8), byte(status)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply func(req []byte) []byte
	}{
		{"nok, request magic", func(req []byte) []byte {
			b := reply(req, 0, []byte{0, 0, 0, 0}, nil, []byte("v"))
			b[0] = magicRequest
			return b
		}},
		{"nok, other opaque", func(req []byte) []byte { b := reply(req, 0, []byte{0, 0, 0, 0}, nil, []byte("v")); b[15]++; return b }},
		{"nok, other opcode", func(req []byte) []byte {
			b := reply(req, 0, []byte{0, 0, 0, 0}, nil, []byte("v"))
			b[1] = opSet
			return b
		}},
		{"nok, no flags", func(req []byte) []byte { return reply(req, 0, nil, nil, []byte("v")) }},
		{"nok, body over MaxBody", func(req []byte) []byte {
			return reply(req, 0, []byte{0, 0, 0, 0}, nil, make([]byte, 2048))
		}},
		{"nok, key longer than body", func(req []byte) []byte { b := reply(req, 0, nil, nil, nil); b[3] = 5; return b }},
		{"nok, truncated", func(req []byte) []byte { return reply(req, 0, []byte{0, 0, 0, 0}, nil, []byte("value"))[:30] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: scripted(t, tt.reply), MaxBody: 1024})
			it, err := c.Get(context.Background(), "k")
			if !IsTransport(err) || it.Value != nil {
				t.Fatalf("Get = %q, %v; want no value and a transport error", it.Value, err)
			}
			c.mu.Lock()
			idle := len(c.idle)
			c.mu.Unlock()
			if idle != 0 {
				t.Errorf("%d idle connections after a malformed reply; want it closed", idle)
			}
		})
	}
	// An error answer's text is the server's prose, never a value.
	c := newClient(t, Config{Addr: scripted(t, func(req []byte) []byte { return reply(req, StatusKeyNotFound, nil, nil, []byte("Not found")) })})
	if it, err := c.Get(context.Background(), "k"); !errors.Is(err, ErrNotFound) || it.Value != nil {
		t.Fatalf("Get of a not-found answer = %q, %v; want ErrNotFound, no value", it.Value, err)
	}
}

func TestClose(t *testing.T) {
	c := newClient(t, Config{Addr: plainAddr(t)})
	ctx := context.Background()
	if _, err := c.Version(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrClosed) || IsTransport(err) {
		t.Fatalf("Get after Close error = %v; want ErrClosed", err)
	}
	if c.Close() != nil {
		t.Error("second Close returned an error")
	}
}

// stickyConn is a connection whose writes, once one has failed, all fail
// with that error, as crypto/tls's do after a write timed out.
type stickyConn struct {
	net.Conn
	err error
}

func (c *stickyConn) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Write(b)
	c.err = err
	return n, err
}
