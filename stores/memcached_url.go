package stores

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

func init() {
	Register("memcached", openMemcached)
	Register("saslmemcached", openMemcached)
}

// openMemcached opens memcached:// and saslmemcached:// URLs:
//
//	memcached://host:port[,host2:port…]?prefix=app:&default_ttl=5m
//	memcached://user:pass@host:port          ASCII authentication (memcached -Y)
//	saslmemcached://user:pass@host:port[,…]  SASL PLAIN over the binary protocol (memcached -S)
//
// A missing port is 11211. Parameters: prefix, default_ttl, timeout,
// max_item_size, max_value_size, max_idle_conns, and for memcached:// URLs
// without credentials protocol=binary|ascii (default binary).
func openMemcached(_ context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	sasl := scheme == "saslmemcached"
	if u.Opaque != "" {
		return nil, fmt.Errorf("stores: %s URL: want %s://host:port, got an opaque URL", scheme, scheme)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("stores: %s URL: unexpected fragment #%s", scheme, u.Fragment)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("stores: %s URL: unexpected path %q", scheme, u.Path)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("stores: %s URL: no server (want %s://host:port)", scheme, scheme)
	}
	var servers []string
	for _, s := range strings.Split(u.Host, ",") {
		addr, err := memcachedAddr(scheme, s)
		if err != nil {
			return nil, err
		}
		servers = append(servers, addr)
	}
	cfg := MemcachedConfig{Servers: servers}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username != "" && cfg.Password == "" {
			return nil, fmt.Errorf("stores: %s URL: user %q has no password; want %s://user:password@host:port", scheme, cfg.Username, scheme)
		}
	}
	p := NewParams(u)
	prefix, hasPrefix := p.lookup("prefix")
	cfg.Prefix = prefix
	cfg.DefaultTTL = p.Duration("default_ttl", 0)
	cfg.Timeout = p.positiveDuration("timeout", 0)
	cfg.MaxItemSize = p.bytesIn("max_item_size", 0, memcachedItemOverhead+1, math.MaxInt32)
	cfg.MaxValueSize = p.bytesIn("max_value_size", 0, 1, math.MaxInt64)
	cfg.MaxIdleConns = p.intIn("max_idle_conns", 0, 1, maxConns)
	if !sasl {
		cfg.Protocol = p.String("protocol", "")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if hasPrefix && prefix == "" {
		return nil, fmt.Errorf("stores: %s URL: parameter prefix is empty: Clear needs a namespace", scheme)
	}
	switch {
	case sasl && cfg.Username == "":
		return nil, errors.New("stores: saslmemcached URL needs user:password (saslmemcached://user:password@host:port); for a server without SASL use memcached://")
	case sasl:
		cfg.Protocol = MemcachedBinary
	case cfg.Protocol != "" && cfg.Protocol != MemcachedBinary && cfg.Protocol != MemcachedASCII:
		return nil, fmt.Errorf("stores: memcached URL: parameter protocol=%q: want %s or %s", cfg.Protocol, MemcachedBinary, MemcachedASCII)
	case cfg.Username != "" && cfg.Protocol == MemcachedBinary:
		return nil, errors.New("stores: memcached URL: user:password@ means memcached's ASCII authentication (-Y); for SASL (-S) use saslmemcached://")
	case cfg.Username != "":
		cfg.Protocol = MemcachedASCII
	}
	return NewMemcached(cfg)
}

// memcachedAddr normalises one server of a URL to host:port.
func memcachedAddr(scheme, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("stores: %s URL: empty server in the host list", scheme)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "11211"
	}
	if host == "" {
		return "", fmt.Errorf("stores: %s URL: server %q has no host", scheme, s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("stores: %s URL: server %q: bad port %q", scheme, s, port)
	}
	// One spelling per address, so that a server listed twice is caught
	// (h:11211 and H:011211, [::1] and [0::1]); names are not resolved.
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}
