package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// authKey is the key of the set command that carries memcached's ASCII
// authentication. The server does not store it when it checks credentials;
// a server without authentication stores it with an exptime of -1, which
// expires it at once, so the credentials are never readable there either.
const authKey = "echocache-auth"

// authDialer returns a gomemcache DialContext that authenticates every new
// connection with memcached's ASCII authentication (a server started with
// -Y authfile): it sends "set <key> 0 -1 <len>\r\n<user> <pass>\r\n" and
// requires "STORED\r\n". A refusal is an error wrapping ErrAuth that names
// the user and the server, never the password.
func authDialer(user, pass string, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := authenticate(ctx, c, addr, user, pass, timeout); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

func authenticate(ctx context.Context, c net.Conn, addr, user, pass string, timeout time.Duration) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(timeout)
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	token := user + " " + pass
	if _, err := fmt.Fprintf(c, "set %s 0 -1 %d\r\n%s\r\n", authKey, len(token), token); err != nil {
		return fmt.Errorf("stores: memcached at %s: sending credentials of user %q: %w", addr, user, err)
	}
	line, err := readLine(c, 256)
	if err != nil {
		hint := ""
		if errors.Is(err, io.EOF) || isTimeout(err) {
			// A memcached -S server reads the ASCII set as a binary
			// request it cannot parse, and closes the connection or waits.
			hint = "; the server closed the connection or did not answer memcached's ASCII authentication: it may expect SASL (memcached -S: saslmemcached://user:pass@host)"
		}
		return fmt.Errorf("stores: memcached at %s: reading the answer to user %q's credentials: %w%s", addr, user, err, hint)
	}
	switch {
	case line == "STORED":
	case strings.HasPrefix(line, "CLIENT_ERROR"):
		return fmt.Errorf("%w: memcached at %s rejected user %q (%s)", ErrAuth, addr, user, line)
	default:
		return fmt.Errorf("stores: memcached at %s: unexpected answer to user %q's credentials: %q", addr, user, line)
	}
	return c.SetDeadline(time.Time{})
}

// readLine reads one CRLF-terminated line byte by byte, so nothing after it
// is consumed from the connection gomemcache takes over.
func readLine(c net.Conn, max int) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < max {
		if _, err := c.Read(buf); err != nil {
			return "", err
		}
		if buf[0] == '\n' {
			return strings.TrimSuffix(b.String(), "\r"), nil
		}
		b.WriteByte(buf[0])
	}
	return "", fmt.Errorf("line longer than %d bytes", max)
}

// checkCredentials rejects credentials that cannot travel in memcached's
// ASCII authentication token ("<user> <pass>" on one line) or in a SASL
// PLAIN message (RFC 4616 §2: no NUL bytes).
func checkCredentials(protocol, user, pass string) error {
	if user == "" && pass == "" {
		return nil
	}
	if user == "" {
		return fmt.Errorf("stores: memcached: a password needs a username")
	}
	if pass == "" {
		// A server with authentication has no user without a password.
		return fmt.Errorf("stores: memcached: username %q has no password", user)
	}
	if protocol == MemcachedBinary {
		if strings.ContainsRune(user, 0) || strings.ContainsRune(pass, 0) {
			return fmt.Errorf("stores: memcached: username %q or its password holds a NUL byte, which SASL PLAIN cannot carry", user)
		}
		return nil
	}
	if strings.ContainsAny(user, " :\r\n") || strings.ContainsAny(pass, "\r\n") {
		return fmt.Errorf("stores: memcached: username %q or its password holds a space, colon or line break", user)
	}
	return nil
}
