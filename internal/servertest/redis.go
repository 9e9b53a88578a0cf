package servertest

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// newRedis prepares a redis-server without persistence (a restarted
// server is empty) working in dir, with extra arguments after the
// package's own (a later argument wins).
func newRedis(dir string, extra ...string) (*Server, error) {
	path, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	return &Server{
		name: "redis-server", path: path, dir: dir, probe: redisPID,
		args: func(port int) []string {
			return append(redisArgs(port, dir), extra...)
		},
	}, nil
}

// redisArgs are the arguments of every redis-server of the package.
// Replication is diskless and starts at once (no 5 s wait for more
// replicas), so a replica is in sync within milliseconds.
func redisArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
	}
}

// StartRedis starts a redis-server of the test's own on a free loopback
// port: for tests that kill, pause or reconfigure it. It has no
// persistence, so a restarted server is empty; extra arguments are added
// after the package's own ("--maxmemory", "1mb"). It is killed when the
// test ends. Without redis-server the test is skipped (failed with
// CI=true).
func StartRedis(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := newRedis(tb.TempDir(), extra...)
	return startPrivate(tb, s, err)
}

// startPrivate starts s for one test and kills it when the test ends.
func startPrivate(tb testing.TB, s *Server, err error) *Server {
	tb.Helper()
	if err == nil {
		err = s.start(tb.Context())
	}
	need(tb, err, "")
	tb.Cleanup(s.Kill)
	return s
}

// startServers starts servers at once; when one fails, it kills the
// others.
func startServers(ctx context.Context, servers []*Server) error {
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.start(ctx) }()
	}
	var first error
	for range servers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		killAll(servers)
	}
	return first
}

func killAll(servers []*Server) {
	for _, s := range servers {
		if s != nil {
			s.Kill()
		}
	}
}

// subdir returns dir/name+i.
func subdir(dir, name string, i int) string {
	return filepath.Join(dir, name+strconv.Itoa(i))
}
