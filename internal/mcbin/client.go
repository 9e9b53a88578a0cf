package mcbin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds a call's I/O when its context has no earlier
	// deadline (gomemcache's DefaultTimeout is the same).
	DefaultTimeout = 500 * time.Millisecond
	// DefaultMaxIdleConns is the number of idle connections kept.
	DefaultMaxIdleConns = 16
	// DefaultMaxBody is the largest reply body accepted: a value of
	// memcached's default item size (-I 1m) with its flags and key, and room
	// to spare.
	DefaultMaxBody = 1<<20 + 4096
)

// NoCreate, as the expiration of Incr or Decr, makes them fail with
// ErrNotFound on an absent key instead of creating it
// (doc/protocol-binary.xml §4.5 "Increment, Decrement").
const NoCreate uint32 = 0xffffffff

// Config configures a Client. Only Addr is required.
type Config struct {
	// Addr is the server: "host:port", or the path of a Unix socket (a name
	// containing "/"). Required.
	Addr string
	// Username and Password are the SASL PLAIN credentials (RFC 4616) that
	// authenticate every new connection, for a memcached started with -S.
	// Optional. Default value "": no authentication. A Password without a
	// Username is a configuration error.
	Username string
	Password string
	// Timeout bounds the I/O of each call, and a dial with its
	// authentication, when the call's context has no earlier deadline.
	// Optional. Default value DefaultTimeout (500 ms).
	Timeout time.Duration
	// MaxIdleConns is the number of idle connections kept for reuse; more
	// are closed when their call ends. The number of connections in use is
	// not bounded: each concurrent call holds one. Optional. Default value
	// DefaultMaxIdleConns (16).
	MaxIdleConns int
	// MaxBody is the largest reply body accepted, in bytes (flags, key and
	// value of an item). A larger reply fails with an error wrapping
	// ErrProtocol, before anything is allocated, and its connection is
	// closed. Set it above the server's item size (memcached -I). Optional.
	// Default value DefaultMaxBody (1 MiB + 4 KiB).
	MaxBody int
	// DialContext opens connections (a loopback proxy in tests, TLS).
	// Connections that are not a syscall.Conn are not checked before reuse;
	// a stale one is then found by the retry of idempotent calls. Optional.
	// Default value: a net.Dialer's DialContext.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Item is a memcached item.
type Item struct {
	// Key is 1 to 250 bytes; any bytes are allowed.
	Key string
	// Value is the item's data. A value returned by Get or GetMulti belongs
	// to the caller.
	Value []byte
	// Flags are 32 bits stored with the item and returned with it; the
	// server does not interpret them.
	Flags uint32
	// Expiration is the item's lifetime in seconds: 0 never expires, up to
	// 2,592,000 (30 days) is relative to now, anything larger is an absolute
	// Unix time (memcached doc/protocol.txt "Expiration times"). Get does
	// not return it.
	Expiration uint32
	// CAS is the item's version, returned by Get, GetMulti and the writes.
	// A non-zero CAS given to Set, Replace or SetMulti makes the write a
	// compare-and-swap: it fails with ErrExists if the item changed since,
	// and with ErrNotFound if it is gone.
	CAS uint64
}

// Client talks to one memcached server. It is safe for concurrent use;
// each call uses one connection of its pool. Create it with New.
type Client struct {
	network, addr string
	user, pass    string
	timeout       time.Duration
	maxIdle       int
	maxBody       int
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   []*conn // LIFO: the most recently used connection is reused first
	closed bool
}

// New returns a Client for cfg. It does no I/O: the first call dials. It
// returns an error naming the field for an invalid Config.
func New(cfg Config) (*Client, error) {
	c := &Client{
		network: "tcp", addr: cfg.Addr,
		user: cfg.Username, pass: cfg.Password,
		timeout: cfg.Timeout, maxIdle: cfg.MaxIdleConns, maxBody: cfg.MaxBody,
		dial: cfg.DialContext,
	}
	switch {
	case cfg.Addr == "":
		return nil, errors.New("mcbin: Config.Addr is required")
	case strings.Contains(cfg.Addr, "/"):
		c.network = "unix"
	default:
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			return nil, fmt.Errorf("mcbin: Config.Addr %q is not host:port: %v", cfg.Addr, err)
		}
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("mcbin: Config.Password is set without a Username")
	}
	// RFC 4616 §2: authcid and passwd are 1*SAFE, which excludes NUL.
	if strings.ContainsRune(cfg.Username, 0) || strings.ContainsRune(cfg.Password, 0) {
		return nil, errors.New("mcbin: Config.Username and Password must not contain NUL bytes (RFC 4616)")
	}
	if cfg.Timeout < 0 || cfg.MaxIdleConns < 0 || cfg.MaxBody < 0 {
		return nil, errors.New("mcbin: Config.Timeout, MaxIdleConns and MaxBody must not be negative")
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxIdle == 0 {
		c.maxIdle = DefaultMaxIdleConns
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.dial == nil {
		c.dial = (&net.Dialer{}).DialContext
	}
	return c, nil
}

// Addr returns the server's address, as given in Config.Addr.
func (c *Client) Addr() string { return c.addr }

// CloseIdle closes the idle connections; the next calls dial afresh.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.close()
	}
}

// Close closes the idle connections and makes later calls fail with
// ErrClosed. Calls in flight finish, and their connections are closed. It
// always returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdle()
	return nil
}

// skipCheck is how long a connection stays trusted after its last reply.
// The check before reuse is a system call (about 1 µs, some 5 % of a
// loopback Get); under load a connection is reused within microseconds, and
// no server restarts in under a millisecond, so a connection that answered
// less than skipCheck ago cannot belong to a server that has gone and come
// back. If the server has just died instead, the call fails as a new
// connection would.
const skipCheck = time.Millisecond

// acquire returns a connection: an idle one that passes the check, or a new
// one (fresh forces a new one). Its deadline is set for the call.
func (c *Client) acquire(ctx context.Context, fresh bool) (cn *conn, reused bool, err error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, false, ErrClosed
		}
		n := len(c.idle)
		if fresh || n == 0 {
			c.mu.Unlock()
			break
		}
		cn = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		now := time.Now()
		// The deadline goes first: the check fails at once on a past one.
		if cn.start(ctx, now, c.timeout) == nil && (now.Sub(cn.idle) < skipCheck || cn.peek.check() == nil) {
			return cn, true, nil
		}
		cn.finish()
		cn.close() // closed by the server (a restart), or out of step
	}
	cn, err = c.dialConn(ctx)
	return cn, false, err
}

// dialConn opens and authenticates a connection, and starts the call on it
// (see conn.start).
func (c *Client) dialConn(ctx context.Context) (*conn, error) {
	d := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	dctx, cancel := context.WithDeadline(ctx, d)
	nc, err := c.dial(dctx, c.network, c.addr)
	cancel()
	if err != nil {
		return nil, c.ioErr(ctx, "dial", err)
	}
	cn := newConn(nc)
	if err := cn.start(ctx, time.Now(), c.timeout); err != nil {
		cn.finish()
		cn.close()
		return nil, c.ioErr(ctx, "dial", err)
	}
	if c.user == "" {
		return cn, nil
	}
	err = c.authenticate(cn)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		cn.finish()
		cn.close()
		if IsServerError(err) {
			return nil, err
		}
		return nil, c.ioErr(ctx, "auth", err)
	}
	return cn, nil
}

// authenticate runs SASL PLAIN (RFC 4616 §2: authzid NUL authcid NUL
// passwd, with an empty authzid) on a new connection
// (doc/protocol-binary.xml §4.14 "SASL"). A failure is an error wrapping
// ErrAuth that names the user, never the password.
func (c *Client) authenticate(cn *conn) error {
	const mech = "PLAIN"
	cn.begin()
	opaque := cn.nextOpaque(1)
	cn.wbuf = appendHeader(cn.wbuf, opSASLAuth, len(mech), 0, len(mech)+2+len(c.user)+len(c.pass), opaque, 0)
	cn.wbuf = append(cn.wbuf, mech...)
	cn.wbuf = append(cn.wbuf, 0)
	cn.wbuf = append(cn.wbuf, c.user...)
	cn.wbuf = append(cn.wbuf, 0)
	cn.wbuf = append(cn.wbuf, c.pass...)
	err := cn.flush()
	clear(cn.wbuf) // the password does not linger in the buffer
	if err != nil {
		return err
	}
	resp, err := readResponse(cn.br, &cn.hdr, c.maxBody)
	if err != nil {
		return err
	}
	if resp.opcode != opSASLAuth || resp.opaque != opaque {
		return protoErr("reply to opcode 0x%02x opaque %d; sent SASL Auth opaque %d", resp.opcode, resp.opaque, opaque)
	}
	switch resp.status {
	case StatusOK:
		return nil
	case StatusAuthError:
		return fmt.Errorf("%w: %s refused user %q%s", ErrAuth, c.addr, c.user, c.mechHint(cn))
	case StatusUnknownCommand:
		return fmt.Errorf("%w: %s does not support SASL (memcached started without -S?)", ErrAuth, c.addr)
	case StatusAuthContinue:
		return fmt.Errorf("%w: %s asked for another SASL step, which PLAIN does not have", ErrAuth, c.addr)
	}
	return fmt.Errorf("%w: %s answered SASL PLAIN with %v", ErrAuth, c.addr, resp.status)
}

// mechHint asks a server that refused PLAIN which mechanisms it offers,
// and returns a hint for the error when PLAIN is not among them.
func (c *Client) mechHint(cn *conn) string {
	var req request
	req.opcode = opSASLListMechs
	resp, err := cn.roundTrip(&req, 1024)
	if err != nil || resp.status != StatusOK {
		return ""
	}
	mechs := strings.Fields(string(resp.value()))
	for _, m := range mechs {
		if m == "PLAIN" {
			return ""
		}
	}
	return fmt.Sprintf(" (the server offers SASL mechanisms %q, not PLAIN)", mechs)
}

// put returns a healthy connection to the idle pool. A connection with
// bytes left over after its reply is out of step and is closed.
func (c *Client) put(cn *conn) {
	if cn.br.Buffered() != 0 {
		cn.close()
		return
	}
	cn.idle = time.Now()
	c.mu.Lock()
	if !c.closed && len(c.idle) < c.maxIdle {
		c.idle = append(c.idle, cn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.close()
}

// do runs exchange on a connection. exchange returns I/O and protocol
// errors, and the status answers after which the server closes the
// connection (an unauthenticated request); other status answers travel in
// its closure. An idempotent call whose reused connection turns out closed
// before any reply byte arrived is run once more on a new connection: the
// server never saw it or has restarted. Incr and Decr are not retried,
// since they may have been applied.
func (c *Client) do(ctx context.Context, op string, idempotent bool, exchange func(cn *conn) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mcbin: %s %s: %w", op, c.addr, err)
	}
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.acquire(ctx, attempt > 0)
		if err != nil {
			return err
		}
		before := cn.nread
		err = exchange(cn)
		interrupted := cn.finish()
		if err == nil {
			if interrupted {
				cn.close() // its deadline is spoilt
			} else {
				c.put(cn)
			}
			return nil
		}
		cn.close()
		if IsServerError(err) {
			return err
		}
		lost := connLost(err)
		if lost {
			// The server dropped this connection; the idle ones are older.
			c.CloseIdle()
		}
		if lost && attempt == 0 && idempotent && reused && !interrupted && cn.nread == before && ctx.Err() == nil {
			continue
		}
		return c.ioErr(ctx, op, err)
	}
}

// connLost reports whether err means the server closed the connection.
func connLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// ioErr turns an I/O or protocol error of op into the error the caller
// sees: a *TransportError, or the context's error when the caller
// cancelled.
func (c *Client) ioErr(ctx context.Context, op string, err error) error {
	if !errors.Is(err, ErrProtocol) {
		if ce := ctx.Err(); errors.Is(ce, context.Canceled) {
			return fmt.Errorf("mcbin: %s %s: %w", op, c.addr, ce)
		}
		// The context's timer and the connection's deadline fire together;
		// either may be seen first.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
	}
	return &TransportError{Op: op, Addr: c.addr, Err: err}
}

// single runs one request and returns its reply, whose status the caller
// maps. The reply's shape is checked against the request's opcode.
func (c *Client) single(ctx context.Context, op string, req *request, idempotent bool) (response, error) {
	var resp response
	err := c.do(ctx, op, idempotent, func(cn *conn) error {
		var err error
		resp, err = cn.roundTrip(req, c.maxBody)
		switch {
		case err != nil:
		case resp.status == StatusOK:
			err = checkShape(req.opcode, &resp)
		case resp.status == StatusAuthError:
			err = c.status(resp.status) // and the server closes the connection
		}
		return err
	})
	return resp, err
}

// checkShape rejects a successful reply whose extras, key or value do not
// fit its opcode (doc/protocol-binary.xml §4).
func checkShape(opcode byte, resp *response) error {
	ok := true
	switch opcode {
	case opGet:
		ok = resp.extLen == 4 && resp.keyLen == 0
	case opIncrement, opDecrement:
		ok = resp.extLen == 0 && resp.keyLen == 0 && resp.bodyLen == 8
	case opSet, opAdd, opReplace, opDelete, opVersion:
		ok = resp.extLen == 0 && resp.keyLen == 0
	}
	if !ok {
		return protoErr("reply to opcode 0x%02x with %d bytes of extras, %d of key, %d of body", opcode, resp.extLen, resp.keyLen, resp.bodyLen)
	}
	return nil
}

// status maps a reply's status to the error the caller sees.
func (c *Client) status(s Status) error {
	if s == StatusAuthError && c.user == "" {
		return fmt.Errorf("%w: %s requires SASL authentication and no Username is configured", ErrAuth, c.addr)
	}
	return statusErr(s)
}

func validKey(key string) bool { return len(key) > 0 && len(key) <= maxKeyLen }
