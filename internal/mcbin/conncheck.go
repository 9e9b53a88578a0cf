//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos

package mcbin

import (
	"errors"
	"io"
	"syscall"
)

var errUnsolicited = errors.New("mcbin: bytes from the server with no request outstanding")

// peeker checks an idle connection without blocking: a peek with
// MSG_PEEK|MSG_DONTWAIT reads 0 bytes once the server has closed its side
// (a restart, an idle timeout), some bytes if it sent anything unasked, and
// EAGAIN when the connection is idle and open. The technique is go-redis's
// (internal/pool/conn_check.go). Connections that are not a syscall.Conn
// (TLS, wrappers from Config.DialContext) are not checked.
type peeker struct {
	raw syscall.RawConn
	buf [1]byte
	err error
	fn  func(fd uintptr) bool // p.peek, bound once so each check allocates nothing
}

func newPeeker(c any) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{raw: raw}
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n == 0 && err == nil:
		p.err = io.EOF
	case n > 0:
		p.err = errUnsolicited
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		p.err = nil
	default:
		p.err = err
	}
	return true
}

// check returns nil when the connection is open with nothing to read. The
// connection's deadline must lie in the future.
func (p *peeker) check() error {
	if p == nil {
		return nil
	}
	if err := p.raw.Read(p.fn); err != nil {
		return err
	}
	return p.err
}
