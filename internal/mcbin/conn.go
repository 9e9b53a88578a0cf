package mcbin

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// inlineValue is the largest value copied into the write buffer; a larger
// one is handed to the kernel from the caller's slice (writev).
const inlineValue = 8 << 10

// maxKeptWriteBuf is the largest write buffer an idle connection keeps.
const maxKeptWriteBuf = 64 << 10

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// watchAfter is how long a call with a cancellable context runs before its
// context is watched. Watching (context.AfterFunc) registers with the
// context and allocates, some 5 % of a loopback Get, and nearly every call
// ends well within watchAfter; so a call starts with its connection's
// deadline at most watchAfter away, and only a call still under way when
// that passes checks its context, watches it and sets its real deadline
// (conn.extend). A cancelled call ends at most watchAfter after the
// cancellation. Only on a plain TCP or Unix socket (conn.resumable): a
// wrapped connection (TLS) is watched at once.
const watchAfter = 5 * time.Millisecond

// conn is one connection to the server. It is used by one call at a time.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	hdr    [headerLen]byte
	wbuf   []byte      // the requests of the current call
	mark   int         // wbuf[:mark] is already in bufs
	bufs   net.Buffers // wbuf segments and large values, for one writev
	wv     net.Buffers // bufs while being written (WriteTo consumes it)
	nread  int64       // bytes read from nc: "has the server answered yet?"
	idle   time.Time   // when the connection went back to the pool
	opaque uint32
	peek   *peeker
	// interrupt sets a past deadline; bound once for context.AfterFunc.
	interrupt func()

	// The call under way (start, extend, finish).
	ctx      context.Context
	deadline time.Time   // the call's real deadline
	early    bool        // the deadline set is an early one (earlyAt), before deadline
	earlyAt  time.Time   // the early deadline set on nc; zero when it has another
	stop     func() bool // ends the watch of ctx; nil when not watched
	// resumable: nc is a plain socket, whose I/O goes on after an early
	// deadline; other connections get the real deadline and a watch at once.
	resumable bool
}

func newConn(nc net.Conn) *conn {
	cn := &conn{nc: nc, peek: newPeeker(nc)}
	// I/O past a deadline resumes on a socket; crypto/tls and other
	// wrappers may not resume a write that timed out.
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		cn.resumable = true
	}
	cn.br = bufio.NewReaderSize(cn, 4096)
	cn.interrupt = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	return cn
}

// Read counts what the bufio.Reader takes from the network, and goes on
// reading past the early deadline of a call (see extend).
func (cn *conn) Read(p []byte) (int, error) {
	for {
		n, err := cn.nc.Read(p)
		cn.nread += int64(n)
		if err == nil || !cn.extend(err) {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// write writes b, going on past the early deadline of a call.
func (cn *conn) write(b []byte) error {
	for {
		n, err := cn.nc.Write(b)
		if err == nil || !cn.extend(err) {
			return err
		}
		b = b[n:]
	}
}

func (cn *conn) close() { _ = cn.nc.Close() }

// nextOpaque reserves n opaques and returns the first.
func (cn *conn) nextOpaque(n int) uint32 {
	o := cn.opaque
	cn.opaque += uint32(n)
	return o
}

// begin starts a new batch of requests.
func (cn *conn) begin() {
	cn.wbuf = cn.wbuf[:0]
	cn.mark = 0
	cn.bufs = cn.bufs[:0]
}

// appendRequest appends one request: header, extras, key, value.
func (cn *conn) appendRequest(opcode byte, opaque uint32, cas uint64, extras []byte, key string, value []byte) {
	body := len(extras) + len(key) + len(value)
	cn.wbuf = appendHeader(cn.wbuf, opcode, len(key), len(extras), body, opaque, cas)
	cn.wbuf = append(cn.wbuf, extras...)
	cn.wbuf = append(cn.wbuf, key...)
	if len(value) <= inlineValue {
		cn.wbuf = append(cn.wbuf, value...)
		return
	}
	cn.bufs = append(cn.bufs, cn.wbuf[cn.mark:len(cn.wbuf):len(cn.wbuf)], value)
	cn.mark = len(cn.wbuf)
}

// flush writes the batch in one write (writev when it holds large values).
func (cn *conn) flush() error {
	var err error
	if len(cn.bufs) == 0 {
		err = cn.write(cn.wbuf)
	} else {
		if cn.mark < len(cn.wbuf) {
			cn.bufs = append(cn.bufs, cn.wbuf[cn.mark:])
		}
		cn.wv = cn.bufs
		// WriteTo consumes what it wrote: after an early deadline it goes
		// on from there.
		for {
			if _, err = cn.wv.WriteTo(cn.nc); err == nil || !cn.extend(err) {
				break
			}
		}
		clear(cn.bufs) // do not keep the caller's values alive
		cn.wv = nil
	}
	if cap(cn.wbuf) > maxKeptWriteBuf {
		cn.wbuf = nil
	}
	return err
}

// roundTrip sends one request and reads its reply, which must answer it
// (same opcode and opaque).
func (cn *conn) roundTrip(req *request, maxBody int) (response, error) {
	cn.begin()
	opaque := cn.nextOpaque(1)
	cn.appendRequest(req.opcode, opaque, req.cas, req.extras[:req.extLen], req.key, req.value)
	if err := cn.flush(); err != nil {
		return response{}, err
	}
	resp, err := readResponse(cn.br, &cn.hdr, maxBody)
	if err != nil {
		return resp, err
	}
	if resp.opcode != req.opcode || resp.opaque != opaque {
		return resp, protoErr("reply to opcode 0x%02x opaque %d; sent opcode 0x%02x opaque %d", resp.opcode, resp.opaque, req.opcode, opaque)
	}
	return resp, nil
}

// request is one request of a single-request call.
type request struct {
	opcode byte
	cas    uint64
	extras [20]byte
	extLen int
	key    string
	value  []byte
}

// start begins a call under ctx at now: its I/O is bounded by the earlier
// of ctx's deadline and now+timeout, and ended by ctx's cancellation.
// A context that can be cancelled is not watched at once: the deadline set
// is at most watchAfter away (and at least half of it), and extend takes
// over when it passes. The call must end with finish.
func (cn *conn) start(ctx context.Context, now time.Time, timeout time.Duration) error {
	d := now.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	cn.ctx, cn.deadline, cn.stop, cn.early = ctx, d, nil, false
	if ctx.Done() != nil && !cn.resumable {
		cn.earlyAt = time.Time{}
		if err := cn.nc.SetDeadline(d); err != nil {
			return err
		}
		cn.stop = context.AfterFunc(ctx, cn.interrupt)
		return nil
	}
	cn.early = ctx.Done() != nil && d.Sub(now) > watchAfter
	if !cn.early {
		cn.earlyAt = time.Time{}
		return cn.nc.SetDeadline(d)
	}
	// The early deadline of a call that ended just before still has more
	// than half of watchAfter to run: it serves this call too, which spares
	// updating the connection's timers (some 4 % of a loopback Get).
	if cn.earlyAt.Sub(now) > watchAfter/2 {
		return nil
	}
	cn.earlyAt = now.Add(watchAfter)
	return cn.nc.SetDeadline(cn.earlyAt)
}

// extend reports whether err is the early deadline of a call whose
// context goes on; it then sets the call's real deadline and watches the
// context (its cancellation interrupts the I/O), and the I/O that failed
// with err may be resumed.
func (cn *conn) extend(err error) bool {
	if !cn.early || !errors.Is(err, os.ErrDeadlineExceeded) || cn.ctx.Err() != nil {
		return false
	}
	cn.early, cn.earlyAt = false, time.Time{}
	// The deadline goes first: a cancellation from here on sets a past one
	// after it.
	if cn.nc.SetDeadline(cn.deadline) != nil {
		return false
	}
	cn.stop = context.AfterFunc(cn.ctx, cn.interrupt)
	return true
}

// finish ends the call begun by start and reports whether ctx's
// cancellation interrupted it, in which case the connection's deadline is
// spoilt and it must be closed.
func (cn *conn) finish() (interrupted bool) {
	if cn.stop != nil {
		interrupted = !cn.stop()
	}
	cn.ctx, cn.stop, cn.early = nil, nil, false
	return interrupted
}
