// Package faultproxy is a TCP proxy on loopback for fault tests. It passes
// bytes between clients and a real server until it is told to cut
// connections part-way through a request or to refuse them altogether, so a
// test can make a store's write fail on the network without touching the
// server.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards the connections it accepts to one target address. It is
// safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	limit  atomic.Int64 // bytes a client may send on one connection; 0: no limit
	down   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on a free loopback port and forwards every connection to
// target. The proxy is closed when the test ends.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultproxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// CutAfter makes the proxy cut a connection, both ends at once, when its
// client has sent more than n bytes over it: the server gets the first n
// bytes and then the end of the connection, the client a reset. n <= 0
// removes the limit. It applies to the connections open now as well.
func (p *Proxy) CutAfter(n int64) { p.limit.Store(max(n, 0)) }

// SetDown(true) cuts every open connection and makes the proxy close the
// new ones as soon as it accepts them, as a server that is gone would;
// SetDown(false) lets connections through again.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		for c := range p.conns {
			reset(c)
		}
		p.mu.Unlock()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one connection until either side ends it or it is cut.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	done := make(chan struct{}, 2)
	go func() {
		p.forward(server, client)
		reset(client)
		server.Close()
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, server)
		reset(client)
		server.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// forward copies what the client sends to the server, cutting the
// connection once the client has sent more than the limit.
func (p *Proxy) forward(server, client net.Conn) {
	var sent int64
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			limit := p.limit.Load()
			cut := limit > 0 && sent+int64(n) > limit
			if cut {
				chunk = chunk[:max(limit-sent, 0)]
			}
			if _, werr := server.Write(chunk); werr != nil {
				return
			}
			sent += int64(len(chunk))
			if cut {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil || p.down.Load() {
		for _, c := range cs {
			reset(c)
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		reset(c)
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// reset closes c so that its peer sees a connection reset rather than an
// orderly end.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
