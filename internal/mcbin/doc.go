// Package mcbin is a client for one memcached server over memcached's
// binary protocol (memcached doc/protocol-binary.xml, "Memcache Binary
// Protocol"), with SASL PLAIN authentication (RFC 4616) for servers started
// with -S. It is the transport of the memcached store (stores.Memcached)
// over the binary protocol, with SASL or without; the store, not this
// package, spreads keys over several servers.
//
// A Client keeps a bounded pool of idle connections. Before an idle
// connection is reused it is checked without blocking for a close or stray
// bytes from the server, so the first call after a server restart already
// goes to the new server. Every new connection authenticates once, when it
// is dialled. Calls run on the caller's goroutine; the context's deadline
// (or Config.Timeout, whichever is earlier) bounds all of a call's I/O, and
// cancelling the context interrupts it, within 5 ms (a call's context is
// watched only once the call has run that long: watching costs more than
// most calls take).
//
// Errors come in three kinds, told apart with IsServerError and
// IsTransport:
//   - status answers of the server (ErrNotFound, ErrExists, ErrTooLarge,
//     ErrAuth …, or a *StatusError): the server is up and said no; the
//     connection stays usable;
//   - transport failures (*TransportError: dial, I/O, timeout, a malformed
//     reply wrapping ErrProtocol): the server could not be talked to; the
//     connection is closed;
//   - everything else: the caller's mistake or choice (ErrBadKey, ErrClosed,
//     context.Canceled).
//
// The binary protocol is deprecated by memcached since 1.6 but still
// shipped, and it is memcached's only SASL path.
//
// # Why a client of our own
//
// No maintained Go library fits. github.com/memcachier/mc/v3, the Go
// client that speaks SASL over the binary protocol, is available here only
// at v3.0.3, last tagged in 2021; it takes no context (a call cannot be
// bounded or cancelled by the request's) and has no multi-get (a page with
// many keys would cost a round trip per key). github.com/bradfitz/gomemcache,
// which the store uses for the ASCII protocol, speaks no binary protocol
// and no SASL. So this package implements the part of the binary protocol
// the store needs, and fuzzes its reply parser (fuzz_test.go).
package mcbin
