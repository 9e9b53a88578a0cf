package stores

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memcached's meta protocol (memcached 1.6 and later; "Meta Get" in
// memcached's doc/protocol.txt) makes the one read the classic commands
// cannot: a value with its CAS unique and its remaining TTL, in one
// command. Incr's compare-and-swap path needs the TTL to write the counter
// back with the expiry it had. gomemcache speaks only the classic
// commands, so the store keeps a few connections of its own for it.

// metaItem is what a meta get returns.
type metaItem struct {
	value []byte
	cas   uint64
	ttl   int64 // remaining seconds; -1 for an item without expiry
}

// maxMetaLine bounds the header line of a meta get answer.
const maxMetaLine = 512

// metaConn is one connection used for meta commands.
type metaConn struct {
	nc net.Conn
	r  *bufio.Reader
}

// metaConns keeps idle meta connections per server address. It is safe for
// concurrent use.
type metaConns struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration
	maxIdle int

	mu     sync.Mutex
	idle   map[string][]*metaConn
	closed bool
}

func (p *metaConns) get(addr net.Addr) (*metaConn, error) {
	p.mu.Lock()
	if list := p.idle[addr.String()]; len(list) > 0 {
		cn := list[len(list)-1]
		p.idle[addr.String()] = list[:len(list)-1]
		p.mu.Unlock()
		return cn, nil
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	nc, err := p.dial(ctx, addr.Network(), addr.String())
	if err != nil {
		return nil, err
	}
	return &metaConn{nc: nc, r: bufio.NewReaderSize(nc, maxMetaLine)}, nil
}

func (p *metaConns) put(addr net.Addr, cn *metaConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr.String()]) >= p.maxIdle {
		cn.nc.Close()
		return
	}
	if p.idle == nil {
		p.idle = make(map[string][]*metaConn)
	}
	p.idle[addr.String()] = append(p.idle[addr.String()], cn)
}

func (p *metaConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, list := range p.idle {
		for _, cn := range list {
			cn.nc.Close()
		}
	}
	p.idle = nil
}

// metaGet reads the data key k with "mg <k> v t c". found is false on a
// miss. A server older than memcached 1.6 answers ERROR, which is reported
// as such.
func (m *Memcached) metaGet(k string) (it metaItem, found bool, err error) {
	addr, err := m.servers.PickServer(k)
	if err != nil {
		return it, false, err
	}
	cn, err := m.meta.get(addr)
	if err != nil {
		return it, false, err
	}
	it, found, err = cn.metaGet(k, m.meta.timeout)
	if err != nil {
		cn.nc.Close()
		return it, false, err
	}
	m.meta.put(addr, cn)
	return it, found, nil
}

func (cn *metaConn) metaGet(k string, timeout time.Duration) (metaItem, bool, error) {
	var it metaItem
	if err := cn.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return it, false, err
	}
	if _, err := io.WriteString(cn.nc, "mg "+k+" v t c\r\n"); err != nil {
		return it, false, err
	}
	line, err := cn.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return it, false, fmt.Errorf("meta get %q: answer line longer than %d bytes", k, maxMetaLine)
	}
	if err != nil {
		return it, false, err
	}
	size, it, found, err := parseMetaGetHeader(string(line))
	if err != nil || !found {
		return it, found, err
	}
	buf := make([]byte, size+2)
	if _, err := io.ReadFull(cn.r, buf); err != nil {
		return it, false, err
	}
	if string(buf[size:]) != "\r\n" {
		return it, false, fmt.Errorf("meta get %q: value of %d bytes not followed by CRLF", k, size)
	}
	it.value = buf[:size:size]
	return it, true, nil
}

// parseMetaGetHeader reads the first line of the answer to "mg <key> v t
// c": "VA <size> t<ttl> c<cas>" (flags in any order) for a hit, "EN" for a
// miss. It returns the size of the value that follows.
func parseMetaGetHeader(line string) (size int, it metaItem, found bool, err error) {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	fields := strings.Fields(line)
	switch {
	case len(fields) == 1 && fields[0] == "EN":
		return 0, it, false, nil
	case len(fields) == 1 && fields[0] == "ERROR":
		return 0, it, false, errors.New("meta get: the server does not know meta commands (memcached 1.6 or later is needed for a negative Incr)")
	case len(fields) > 0 && (fields[0] == "CLIENT_ERROR" || fields[0] == "SERVER_ERROR"):
		return 0, it, false, fmt.Errorf("meta get: %.200s", line)
	case len(fields) < 2 || fields[0] != "VA":
		return 0, it, false, fmt.Errorf("meta get: unexpected answer %.64q", line)
	}
	size, err = strconv.Atoi(fields[1])
	if err != nil || size < 0 || size > 1<<30 {
		return 0, it, false, fmt.Errorf("meta get: bad value size %.32q", fields[1])
	}
	var haveTTL, haveCAS bool
	for _, f := range fields[2:] {
		switch f[0] {
		case 't':
			if it.ttl, err = strconv.ParseInt(f[1:], 10, 64); err != nil || it.ttl < -1 {
				return 0, it, false, fmt.Errorf("meta get: bad TTL flag %.32q", f)
			}
			haveTTL = true
		case 'c':
			if it.cas, err = strconv.ParseUint(f[1:], 10, 64); err != nil {
				return 0, it, false, fmt.Errorf("meta get: bad CAS flag %.32q", f)
			}
			haveCAS = true
		}
	}
	if !haveTTL || !haveCAS {
		return 0, it, false, fmt.Errorf("meta get: answer %.64q lacks the TTL or CAS flag", line)
	}
	return size, it, true, nil
}

// keepExpiration returns the exptime that gives a rewritten item the expiry
// it had, from the remaining TTL a meta get reported: 0 for none; at least
// one second for an item about to expire (memcached counts whole seconds,
// and an exptime of 0 would mean never); an absolute time beyond 30 days.
func keepExpiration(ttl int64, now time.Time) int32 {
	switch {
	case ttl < 0:
		return 0
	case ttl == 0:
		return 1
	case ttl <= memcachedRelativeLimit:
		return int32(ttl)
	}
	abs := now.Unix() + ttl
	if abs > 1<<31-1 {
		return 0
	}
	return int32(abs)
}
