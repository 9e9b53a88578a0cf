package stores

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/echocache/echocache/internal/mcbin"
	"github.com/echocache/echocache/internal/rendezvous"
)

// Defaults of the memcached store.
const (
	// DefaultMemcachedTimeout bounds each call to a server when the
	// caller's context has no earlier deadline: connect (with
	// authentication), write and read.
	DefaultMemcachedTimeout = 500 * time.Millisecond
	// DefaultMemcachedMaxItemSize is memcached's default item size limit (-I).
	DefaultMemcachedMaxItemSize = 1 << 20
	// DefaultMemcachedMaxIdleConns is how many idle connections are kept per server.
	DefaultMemcachedMaxIdleConns = 16
)

// memcachedItemOverhead is the room left in an item for the key (at most
// 250 bytes) and memcached's item header.
const memcachedItemOverhead = 512

// The wire protocols of [MemcachedConfig.Protocol].
const (
	// MemcachedBinary is memcached's binary protocol, spoken by the
	// store's own client (internal/mcbin): credentials authenticate with
	// SASL PLAIN (RFC 4616), for a server started with -S; Flask-Caching's
	// SASLMemcachedCache. Without credentials it works with any memcached
	// 1.4 or later.
	MemcachedBinary = "binary"
	// MemcachedASCII is memcached's text protocol, spoken through
	// gomemcache: credentials authenticate with memcached's ASCII
	// authentication, for a server started with -Y authfile.
	MemcachedASCII = "ascii"
)

// MemcachedConfig configures [NewMemcached].
type MemcachedConfig struct {
	// Servers are the host:port addresses of the memcached servers. Keys
	// are spread over them by rendezvous hashing of the names as given
	// (internal/rendezvous), so every process of an application must list
	// the same names (their order does not matter).
	// Required.
	Servers []string

	// Protocol is the wire protocol: MemcachedBinary or MemcachedASCII.
	// Optional. Default value MemcachedASCII when Username is set (the
	// ASCII authentication of memcached -Y), MemcachedBinary otherwise.
	Protocol string

	// Username and Password authenticate every new connection: with SASL
	// PLAIN over the binary protocol (memcached -S), or with memcached's
	// ASCII authentication (memcached -Y). Credentials the server refuses
	// make calls fail with an error wrapping ErrAuth that names the user,
	// never the password.
	// Optional. Default value: no authentication.
	Username string
	// Password goes with Username: each needs the other (NewMemcached
	// refuses one without the other).
	// Optional. Default value "".
	Password string

	// Prefix is the namespace: every key starts with it, and Clear retires
	// only keys under it. At most 128 bytes, no spaces or control bytes.
	// Optional. Default value DefaultPrefix ("echocache:").
	Prefix string

	// DefaultTTL is the lifetime of entries written with ttl 0 (see the
	// package doc). Zero keeps them until deleted or evicted.
	// Optional. Default value 0.
	DefaultTTL time.Duration

	// Timeout bounds each call to a server when the caller's context has
	// no earlier deadline, connect and authentication included. A server
	// whose every answer takes more than half of it for a second is
	// treated as failing (see Memcached).
	// Optional. Default value DefaultMemcachedTimeout (500ms).
	Timeout time.Duration

	// MaxIdleConns is how many idle connections are kept per server.
	// Optional. Default value DefaultMemcachedMaxIdleConns (16).
	MaxIdleConns int

	// MaxItemSize is the servers' item size limit (memcached -I). A value
	// longer than MaxItemSize minus 512 bytes (room for the key and the
	// item header) is stored in chunks of that size.
	// Optional. Default value DefaultMemcachedMaxItemSize (1 MiB).
	MaxItemSize int64

	// MaxValueSize is the longest value stored, in bytes; a longer one is
	// refused with ErrTooLarge without a round trip, and the key's
	// previous value is removed. At most 1024 chunks.
	// Optional. Default value DefaultMemcachedMaxChunks (32) chunks of
	// MaxItemSize minus 512 bytes: 33,538,048 bytes with 1 MiB items.
	MaxValueSize int64

	// Logger receives the store's warnings: a server skipped after
	// failures and back again, a chunked entry that does not match its
	// manifest. echo.Logger and echocache.Logger satisfy it.
	// Optional. Default value nil: no logging.
	Logger interface {
		Warnf(format string, args ...any)
	}
}

// Memcached is a [Store] on one or more memcached servers. It is safe for
// concurrent use.
//
// # Servers
//
// Keys are placed on servers by rendezvous hashing: a server joining a
// pool of N takes about 1/(N+1) of the keys, and one leaving gives up only
// its own. Each server has its own circuit breaker (memcached_pool.go): a
// server that fails twice in a row, or is slow on every call for a second,
// is skipped, its keys miss, and it is probed every 200 ms until it
// answers. While other servers answer, the calls that needed a skipped or
// failing server return a *NodeError (errors.Is(err, ErrNodeDown)), which
// echocache's breaker does not count against the whole store; GetMany then
// returns the values of the other servers with it. When no server answers,
// errors are plain.
//
// # Keys
//
// A key is stored as prefix + generation + ":" + key when that is a legal
// memcached key (at most 250 bytes, no spaces or control bytes) and key does
// not start with '#'; otherwise as prefix + generation + ":#" + the
// hex SHA-256 of key. Two different keys never map to one.
//
// # Clear
//
// Each server keeps its own namespace generation (memcached_gen.go): Clear
// moves all of them, and a server that restarts or joins retires only its
// own entries. Reads learn a server's generation in the same round trip as
// the data.
//
// # Large values
//
// A value longer than an item is stored in chunks with a manifest and read
// all or nothing (memcached_chunks.go); MaxValueSize bounds it.
//
// # Incr
//
// Incr has Redis's signed 64-bit semantics and counter form (see
// [Incrementer]) and, like INCRBY, keeps the entry's expiry; a value read
// back after it is the plain decimal, never memcached's space-padded one
// (memcached_incr.go).
//
// # Contexts
//
// Over the binary protocol, a call's context bounds all of its I/O and
// cancelling it interrupts the call (within 5 ms, see internal/mcbin). gomemcache (the ASCII protocol) takes
// no context: the store returns the context's error as soon as the context
// ends, and the round trip under way goes on in the background until it
// completes or Timeout ends it. A call abandoned this way may still take
// effect, as with any network store.
type Memcached struct {
	servers    []*mcServer
	ring       *rendezvous.Ring
	prefix     string
	defaultTTL time.Duration
	timeout    time.Duration
	slow       time.Duration // a call this long counts as slow: Timeout/2
	chunkSize  int           // the largest value of one item
	maxValue   int
	logger     interface{ Warnf(string, ...any) }
	closed     atomic.Bool
	binary     bool // every server is spoken to over the binary protocol (internal/mcbin)
	auth       bool // the store has credentials

	probeMu   sync.Mutex
	probeStop bool
	probes    sync.WaitGroup
	quit      chan struct{}
}

var _ interface {
	Store
	Pinger
} = (*Memcached)(nil)

// NewMemcached returns a memcached store. It checks cfg but does not
// contact the servers; use [Ping] to check them at start-up.
func NewMemcached(cfg MemcachedConfig) (*Memcached, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("stores: memcached: no servers")
	}
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("stores: memcached: negative DefaultTTL %s", cfg.DefaultTTL)
	}
	if cfg.Timeout < 0 || cfg.MaxIdleConns < 0 || cfg.MaxItemSize < 0 || cfg.MaxValueSize < 0 {
		return nil, errors.New("stores: memcached: negative Timeout, MaxIdleConns, MaxItemSize or MaxValueSize")
	}
	protocol := cfg.Protocol
	switch {
	case protocol == "" && cfg.Username != "":
		protocol = MemcachedASCII
	case protocol == "":
		protocol = MemcachedBinary
	case protocol != MemcachedBinary && protocol != MemcachedASCII:
		return nil, fmt.Errorf("stores: memcached: Protocol %q: want %q or %q", protocol, MemcachedBinary, MemcachedASCII)
	}
	if err := checkCredentials(protocol, cfg.Username, cfg.Password); err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > maxMemcachedPrefix || !legalMemcachedKey(prefix) {
		return nil, fmt.Errorf("stores: memcached: prefix %q: want at most %d bytes without spaces or control bytes", prefix, maxMemcachedPrefix)
	}
	timeout := orDefault(cfg.Timeout, DefaultMemcachedTimeout)
	idle := orDefault(cfg.MaxIdleConns, DefaultMemcachedMaxIdleConns)
	maxItem := orDefault(cfg.MaxItemSize, DefaultMemcachedMaxItemSize)
	if maxItem <= memcachedItemOverhead || maxItem > math.MaxInt32 {
		return nil, fmt.Errorf("stores: memcached: MaxItemSize %d: want more than %d bytes and at most 2 GiB", maxItem, memcachedItemOverhead)
	}
	chunk := int(maxItem - memcachedItemOverhead)
	maxValue := orDefault(cfg.MaxValueSize, int64(chunk)*DefaultMemcachedMaxChunks)
	if maxValue > int64(chunk)*maxMemcachedChunks {
		return nil, fmt.Errorf("stores: memcached: MaxValueSize %d: want at most %d chunks of %d bytes (%d bytes); raise MaxItemSize (memcached -I) for larger values",
			maxValue, maxMemcachedChunks, chunk, int64(chunk)*maxMemcachedChunks)
	}
	ring, err := rendezvous.New(cfg.Servers...)
	if err != nil {
		return nil, fmt.Errorf("stores: memcached: servers %v: %w", cfg.Servers, err)
	}
	m := &Memcached{
		ring:       ring,
		prefix:     prefix,
		defaultTTL: cfg.DefaultTTL,
		timeout:    timeout,
		slow:       timeout / 2,
		chunkSize:  chunk,
		maxValue:   int(maxValue),
		logger:     cfg.Logger,
		quit:       make(chan struct{}),
		binary:     protocol == MemcachedBinary,
		auth:       cfg.Username != "",
	}
	for _, addr := range cfg.Servers {
		node, err := newMemcachedNode(protocol, addr, cfg.Username, cfg.Password, timeout, idle, int(maxItem))
		if err != nil {
			for _, s := range m.servers {
				s.node.close()
			}
			return nil, err
		}
		m.servers = append(m.servers, &mcServer{addr: addr, node: node, genKey: genKey(prefix, addr)})
	}
	return m, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// newMemcachedNode returns the transport to one server.
func newMemcachedNode(protocol, addr, user, pass string, timeout time.Duration, idle, maxItem int) (mcNode, error) {
	if protocol == MemcachedBinary {
		c, err := mcbin.New(mcbin.Config{
			Addr: addr, Username: user, Password: pass,
			Timeout: timeout, MaxIdleConns: idle,
			MaxBody: maxItem + 4096, // an item, its flags and its key
		})
		if err != nil {
			return nil, fmt.Errorf("stores: memcached: server %q: %w", addr, err)
		}
		return binaryNode{c}, nil
	}
	servers := new(memcache.ServerList)
	if err := servers.SetServers(addr); err != nil {
		return nil, fmt.Errorf("stores: memcached: server %q: %w", addr, err)
	}
	c := memcache.NewFromSelector(servers)
	c.Timeout = timeout
	c.MaxIdleConns = idle
	if user != "" {
		c.DialContext = authDialer(user, pass, timeout)
	} else {
		c.DialContext = (&net.Dialer{Timeout: timeout}).DialContext
	}
	return asciiNode{c}, nil
}

// MaxValueSize returns the longest value the store accepts; longer values
// give ErrTooLarge.
func (m *Memcached) MaxValueSize() int { return m.maxValue }

func (m *Memcached) check(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stores: memcached: %w", err)
	}
	return nil
}

func (m *Memcached) logf(format string, args ...any) {
	if m.logger != nil {
		m.logger.Warnf(format, args...)
	}
}

// Get implements [Store]: one round trip that reads the key and its
// server's generation (one more for a chunked value).
func (m *Memcached) Get(ctx context.Context, key string) ([]byte, error) {
	return m.getOp(ctx, key)
}

// GetMany implements [MultiGetter] like Get, with one round trip per server,
// servers concurrently. When some servers fail while others answer, it
// returns the values of those that answered together with an error
// wrapping ErrNodeDown (one *NodeError per failed server, naming its
// keys).
func (m *Memcached) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	return m.getManyOp(ctx, keys)
}

// Set implements [Store], in the generation seen last. A value longer
// than an item is stored in chunks.
func (m *Memcached) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.setOp(ctx, key, value, ttl)
}

// SetMany implements [MultiSetter], in the generation seen last, with one round
// trip per server (two with chunked values). Every value is checked
// against MaxValueSize before anything is written.
func (m *Memcached) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return m.setManyOp(ctx, items, ttl)
}

// Add implements [Store] with memcached's add, in the current generation.
func (m *Memcached) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return m.addOp(ctx, key, value, ttl)
}

// Delete implements [Store], in the current generation.
func (m *Memcached) Delete(ctx context.Context, key string) error {
	return m.deleteManyOp(ctx, []string{key})
}

// DeleteMany implements [MultiDeleter] with one round trip of deletes per server
// (binary protocol; a few deletes in flight at once on the ASCII one), in
// the current generation.
func (m *Memcached) DeleteMany(ctx context.Context, keys []string) error {
	return m.deleteManyOp(ctx, keys)
}

// Incr implements [Incrementer] with Redis's signed 64-bit semantics (see the
// type's doc).
func (m *Memcached) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	return m.incrOp(ctx, key, delta)
}

// Clear implements [Store] by moving every server's generation; it never
// flushes a server. When some servers cannot be reached it returns a
// *NodeError for each, and moves their generation before they serve
// anything again.
func (m *Memcached) Clear(ctx context.Context) error {
	return m.clearOp(ctx)
}

// Ping implements [Pinger]: every server must answer, after accepting the
// credentials when the store has them, and serve a read (its generation
// key), which a server that requires credentials the store does not have
// refuses. Credentials a server refuses or requires give an error wrapping
// ErrAuth; a server that does not answer while others do, a *NodeError.
// A store without credentials whose server accepts the connection and then
// says nothing (a memcached -Y server spoken to in binary, or a -S one in
// ASCII) gets an error saying that credentials are probably needed; one
// with SASL credentials whose server does not answer the SASL handshake
// (a memcached -Y server), one saying that the server may expect ASCII
// authentication.
func (m *Memcached) Ping(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	groups := make([]serverGroup, len(m.servers))
	for i, s := range m.servers {
		groups[i] = serverGroup{s: s}
	}
	return m.eachServer("ping", groups, nil, func(g serverGroup) error {
		err := g.s.node.probe(ctx)
		if err == nil {
			if _, err = g.s.node.get(ctx, g.s.genKey); errors.Is(err, errMCMiss) {
				err = nil
			}
		}
		var te *mcbin.TransportError
		switch {
		case err == nil || !silentAfterConnect(err):
		case !m.auth:
			err = fmt.Errorf("%w; the server took the connection but did not answer: credentials are probably needed (memcached -Y: memcached://user:pass@host; memcached -S: saslmemcached://user:pass@host)", err)
		case m.binary && errors.As(err, &te) && te.Op == "auth":
			err = fmt.Errorf("%w; the server took the connection but did not answer the SASL handshake: it may expect memcached's ASCII authentication (memcached -Y: memcached://user:pass@host)", err)
		}
		return err
	})
}

// silentAfterConnect reports whether err is a read that timed out on a
// connection the server accepted.
func silentAfterConnect(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && op.Timeout()
}

// Close implements [Store]: it stops the probes of failed servers and
// closes idle connections; later calls return ErrClosed.
func (m *Memcached) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.stopProbes()
	for _, s := range m.servers {
		s.node.close()
	}
	return nil
}
