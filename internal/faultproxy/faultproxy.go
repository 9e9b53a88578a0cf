// Package faultproxy is a TCP proxy on loopback that puts faults between
// clients and a real server, for fault tests: it passes bytes through,
// stalls, delays the server's replies, drops connections, or cuts a
// connection part-way through what its client sends, and can be switched
// from one to another at any moment while clients use it. A test points a
// store at Addr instead of the server.
//
// The proxy knows nothing of the protocol it carries: a "reply" is
// whatever the server sent in one read, a "request" whatever the client
// sent in one read.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A Mode is what the proxy does with connections.
type Mode int

// The modes.
const (
	// Pass forwards bytes both ways as they come. A proxy starts in Pass.
	Pass Mode = iota
	// Stall accepts connections and reads what clients send, but forwards
	// nothing either way: the server looks wedged. What is held is
	// forwarded once the proxy is switched to Pass or Delay, as a wedged
	// server that comes back answers what was queued for it.
	Stall
	// Delay forwards requests at once and holds each reply until the
	// delay has passed since it came from the server.
	Delay
	// Drop resets every connection, and accepts new ones only to reset
	// them at once, as a server that is gone would (the client sees
	// "connection reset by peer", at the dial or at the first read).
	Drop
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Stall:
		return "stall"
	case Delay:
		return "delay"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("faultproxy.Mode(%d)", int(m))
}

// dialTimeout bounds the proxy's connection to the server.
const dialTimeout = 5 * time.Second

// A Proxy forwards the connections made to Addr to its target. It is safe
// for concurrent use; its methods may be called while clients use it.
type Proxy struct {
	target string
	ln     net.Listener
	limit  atomic.Int64   // bytes a client may send on one connection; 0: no limit
	wg     sync.WaitGroup // the accept loop and every link's goroutines

	mu      sync.Mutex
	mode    Mode
	delay   time.Duration
	changed chan struct{} // closed, and replaced, at every switch
	links   map[*link]struct{}
	closed  bool
}

// Start listens on a free port of 127.0.0.1 and forwards every connection
// to target ("host:port"), in Pass mode. The proxy is closed when the test
// ends.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultproxy: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, changed: make(chan struct{}), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the address clients connect to, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Pass switches to forwarding everything at once, including what a stall
// or a delay holds.
func (p *Proxy) Pass() { p.set(Pass, 0) }

// Stall switches to holding everything: connections are accepted and read,
// nothing is forwarded.
func (p *Proxy) Stall() { p.set(Stall, 0) }

// Delay switches to holding each reply for d after it came from the
// server; requests are forwarded at once.
func (p *Proxy) Delay(d time.Duration) { p.set(Delay, d) }

// Drop resets every connection and switches to resetting new ones.
func (p *Proxy) Drop() {
	p.set(Drop, 0)
	for _, l := range p.openLinks() {
		l.end(true)
	}
}

// SetDown(true) is Drop, SetDown(false) is Pass.
func (p *Proxy) SetDown(down bool) {
	if down {
		p.Drop()
	} else {
		p.Pass()
	}
}

// CutAfter makes the proxy cut a connection, both ends at once, when its
// client has sent more than n bytes over it: the server gets the first n
// bytes and then the end of the connection, the client a reset. n <= 0
// removes the limit. It applies to the connections open now as well, and
// in every mode.
func (p *Proxy) CutAfter(n int64) { p.limit.Store(max(n, 0)) }

// Mode returns the current mode and, in Delay, the delay.
func (p *Proxy) Mode() (Mode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay
}

func (p *Proxy) set(m Mode, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.delay = m, d
	close(p.changed)
	p.changed = make(chan struct{})
}

// Conns returns the number of client connections open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

func (p *Proxy) openLinks() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

// Close stops listening, resets every connection and waits until the
// proxy's goroutines have ended. Closing a closed proxy does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range p.openLinks() {
		l.end(true)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a client that went away before being accepted
		}
		if m, _ := p.Mode(); m == Drop {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects client to the target and forwards between them.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		reset(client)
		return
	}
	l := &link{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.mode == Drop {
		p.mu.Unlock()
		l.end(true)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(l, server, client, false) })
	wg.Go(func() { p.pipe(l, client, server, true) })
	wg.Wait()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// A link is a client's connection and the proxy's connection to the
// server on its behalf.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed by end
}

// end closes both connections, resetting the client's when abort is set
// (a fault) rather than ending it in order; the link's goroutines then
// end.
func (l *link) end(abort bool) {
	l.once.Do(func() {
		close(l.done)
		if abort {
			reset(l.client)
		} else {
			_ = l.client.Close()
		}
		_ = l.server.Close()
	})
}

// reset closes c so that its peer sees a connection reset rather than an
// orderly end.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// A chunk is what one read returned, and when.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe forwards from src to dst, each chunk when the mode lets it
// through. replies tells whether src is the server. When src ends, pipe
// forwards what it holds, then ends the link.
func (p *Proxy) pipe(l *link, dst, src net.Conn, replies bool) {
	chunks := make(chan chunk, 16)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{buf[:n], time.Now()}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	abort := false
	var sent int64 // by the client, for CutAfter
	for c := range chunks {
		if !p.gate(l, c, replies) {
			break
		}
		b := c.b
		limit := p.limit.Load()
		cut := !replies && limit > 0 && sent+int64(len(b)) > limit
		if cut {
			b = b[:max(limit-sent, 0)]
		}
		if _, err := dst.Write(b); err != nil {
			break
		}
		sent += int64(len(b))
		if cut {
			abort = true
			break
		}
	}
	l.end(abort)
	for range chunks { // let the reader see the end
	}
}

// gate waits until the mode lets c through, and reports false if the link
// ended first.
func (p *Proxy) gate(l *link, c chunk, replies bool) bool {
	for {
		p.mu.Lock()
		mode, d, changed := p.mode, p.delay, p.changed
		p.mu.Unlock()
		var timer *time.Timer
		var wait <-chan time.Time // nil: until the mode changes
		switch {
		case mode == Pass, mode == Delay && !replies:
			return true
		case mode == Delay:
			left := time.Until(c.at.Add(d))
			if left <= 0 {
				return true
			}
			timer = time.NewTimer(left)
			wait = timer.C
		}
		select {
		case <-wait:
			return true
		case <-changed:
		case <-l.done:
			return false
		}
		if timer != nil {
			timer.Stop()
		}
	}
}
