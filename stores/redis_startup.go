package stores

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Start-up checks of a redis store that name the misconfiguration behind
// an error, or catch one that PING alone does not: the check of
// [OpenAndPing] runs them through Ping.

// explainPing rewords the error of a PING that says more than go-redis
// tells, on one line: refused credentials (an error wrapping ErrAuth);
// sentinels that answer but do not know the master's name (go-redis says
// "all sentinels specified in configuration are unreachable: redis: nil"
// and one "redis: nil" line per sentinel); a server that does not speak
// the TLS a rediss:// URL asks for (explainTLS).
func (r *Redis) explainPing(err error) error {
	if isRedisAuthError(err) {
		// The server's own words name the user, never the password.
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if r.sentinel != nil && errors.Is(err, redis.Nil) {
		answered, total := sentinelAnswers(err)
		msg := fmt.Sprintf("the sentinels answered but know no master named %q (SENTINEL GET-MASTER-ADDR-BY-NAME returned nothing from %d of %d): check the master name, the URL's path /MASTER_NAME",
			r.sentinel.MasterName, answered, total)
		return &explained{msg: msg, err: err}
	}
	return r.explainTLS(err)
}

// isRedisAuthError reports whether err is a server's refusal of the
// credentials: WRONGPASS (a wrong user or password, Redis 6 and later),
// NOAUTH (a password required and none given) or an AUTH of a server
// without a password (Redis before 6).
func isRedisAuthError(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
		strings.Contains(msg, "AUTH <password> called without any password configured")
}

// tlsProbeTimeout bounds the plain-text PING explainTLS sends.
const tlsProbeTimeout = 300 * time.Millisecond

// explainTLS rewords the failure of a rediss:// store whose server does
// not speak TLS: its answer was not a TLS record (tls.RecordHeaderError),
// or the handshake got no answer (a plain redis server waits for the end
// of a command line that the TLS ClientHello never sends, so the PING
// ends with the context's deadline). On a timeout it tells the two apart
// from a slow server by sending a plain-text PING to the server's
// address: a RESP answer ('+' or '-') says the server speaks plain text.
func (r *Redis) explainTLS(err error) error {
	var addr string
	var cfg *tls.Config
	switch c := r.cli().(type) {
	case *redis.Client:
		addr, cfg = c.Options().Addr, c.Options().TLSConfig
	case *redis.ClusterClient:
		if addrs := c.Options().Addrs; len(addrs) > 0 {
			addr, cfg = addrs[0], c.Options().TLSConfig
		}
	}
	if cfg == nil || addr == "" {
		return err
	}
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh):
		return &explained{msg: fmt.Sprintf("the server at %s answered the TLS handshake with something other than TLS: it does not speak TLS (rediss:// asks for TLS; use redis:// for a plain-text server) (%v)", addr, err), err: err}
	case !isTimeout(err): // also context.DeadlineExceeded
		return err
	case answersPlainRESP(addr):
		return &explained{msg: fmt.Sprintf("a TLS handshake with %s got no answer, and the server answers a plain-text PING: it does not speak TLS (rediss:// asks for TLS; use redis:// for a plain-text server) (%v)", addr, err), err: err}
	}
	return &explained{msg: fmt.Sprintf("no answer from %s over TLS: the TLS handshake or the PING timed out; the server may not speak TLS (rediss:// asks for TLS), or be slow or unreachable (%v)", addr, err), err: err}
}

// answersPlainRESP reports whether the server at addr answers a
// plain-text PING with a RESP reply ("+PONG", or an error such as
// "-NOAUTH"), within tlsProbeTimeout.
func answersPlainRESP(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, tlsProbeTimeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(tlsProbeTimeout))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	var b [1]byte
	n, _ := conn.Read(b[:])
	return n == 1 && (b[0] == '+' || b[0] == '-')
}

// sentinelAnswers counts, in go-redis's error of a master address lookup
// (one joined error per sentinel), the sentinels that answered without
// an address (redis.Nil) and all of them.
func sentinelAnswers(err error) (answered, total int) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		j, ok := e.(interface{ Unwrap() []error })
		if !ok {
			continue
		}
		for _, one := range j.Unwrap() {
			total++
			if errors.Is(one, redis.Nil) {
				answered++
			}
		}
		return answered, total
	}
	return 1, 1
}

// explained is an error reworded for the reader: its message, on one
// line, and the error it explains, for errors.Is and errors.As.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// checkNotClusterNode refuses a single-server store whose server is a
// node of a Redis Cluster ("cluster_enabled:1" in INFO cluster): it would
// answer for the keys of its own slots and refuse the others with MOVED.
// A server that does not answer INFO (an ACL that forbids it) passes.
func (r *Redis) checkNotClusterNode(ctx context.Context) error {
	c, ok := r.cli().(*redis.Client)
	if !ok || r.sentinel != nil {
		return nil
	}
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil || !strings.Contains(info, "cluster_enabled:1") {
		return nil
	}
	addr := c.Options().Addr
	return fmt.Errorf("stores: redis: %s is a node of a Redis Cluster, which serves only the keys of its own slots; open the cluster with redis+cluster://%s/ (more seeds comma-separated)", addr, addr)
}
