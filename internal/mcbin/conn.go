package mcbin

import (
	"bufio"
	"context"
	"net"
	"time"
)

// inlineValue is the largest value copied into the write buffer; a larger
// one is handed to the kernel from the caller's slice (writev).
const inlineValue = 8 << 10

// maxKeptWriteBuf is the largest write buffer an idle connection keeps.
const maxKeptWriteBuf = 64 << 10

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

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
}

func newConn(nc net.Conn) *conn {
	cn := &conn{nc: nc, peek: newPeeker(nc)}
	cn.br = bufio.NewReaderSize(cn, 4096)
	cn.interrupt = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	return cn
}

// Read counts what the bufio.Reader takes from the network.
func (cn *conn) Read(p []byte) (int, error) {
	n, err := cn.nc.Read(p)
	cn.nread += int64(n)
	return n, err
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
		_, err = cn.nc.Write(cn.wbuf)
	} else {
		if cn.mark < len(cn.wbuf) {
			cn.bufs = append(cn.bufs, cn.wbuf[cn.mark:])
		}
		cn.wv = cn.bufs
		_, err = cn.wv.WriteTo(cn.nc)
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

// setDeadline bounds the call's I/O by the earlier of ctx's deadline and
// now+timeout.
func (cn *conn) setDeadline(ctx context.Context, now time.Time, timeout time.Duration) error {
	d := now.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	return cn.nc.SetDeadline(d)
}

// watch makes ctx's cancellation interrupt the connection's I/O. The
// returned stop (nil for a context that cannot be cancelled) must be called
// once the I/O is over; if it returns false, the interruption fired and the
// connection must be closed.
func (cn *conn) watch(ctx context.Context) (stop func() bool) {
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, cn.interrupt)
}
