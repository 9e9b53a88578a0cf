package rendezvous

import (
	"net"
	"strings"

	"github.com/bradfitz/gomemcache/memcache"
)

// ServerSelector is a memcache.ServerSelector (github.com/bradfitz/gomemcache)
// that places keys by rendezvous hashing instead of memcache.ServerList's
// CRC-32 modulo N, which moves about three quarters of the keys when a fourth
// server joins three. Use it with memcache.NewFromSelector. It is immutable
// and safe for concurrent use.
type ServerSelector struct {
	ring  *Ring
	addrs []net.Addr
}

var _ memcache.ServerSelector = (*ServerSelector)(nil)

// NewServerSelector resolves servers the way memcache.ServerList.SetServers
// does (a name containing "/" is a Unix socket path, anything else a TCP
// host:port) and returns a selector over them. Keys are placed by the names
// as given, not by the resolved addresses. It returns the error of the first
// name that does not resolve, ErrNoNodes for no servers, and an error for a
// repeated name.
func NewServerSelector(servers ...string) (*ServerSelector, error) {
	ring, err := New(servers...)
	if err != nil {
		return nil, err
	}
	addrs := make([]net.Addr, len(servers))
	for i, s := range servers {
		var a net.Addr
		if strings.Contains(s, "/") {
			a, err = net.ResolveUnixAddr("unix", s)
		} else {
			a, err = net.ResolveTCPAddr("tcp", s)
		}
		if err != nil {
			return nil, err
		}
		// gomemcache keys its idle connections by Addr.String() on every
		// call; resolve the string once.
		addrs[i] = staticAddr{network: a.Network(), str: a.String()}
	}
	return &ServerSelector{ring: ring, addrs: addrs}, nil
}

// PickServer returns the address of the server that holds key.
func (s *ServerSelector) PickServer(key string) (net.Addr, error) {
	return s.addrs[s.ring.Pick(key)], nil
}

// Each calls f for every server, in the order given to NewServerSelector,
// and stops at the first error, which it returns.
func (s *ServerSelector) Each(f func(net.Addr) error) error {
	for _, a := range s.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

type staticAddr struct{ network, str string }

func (a staticAddr) Network() string { return a.network }
func (a staticAddr) String() string  { return a.str }
