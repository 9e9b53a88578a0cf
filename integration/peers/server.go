package peers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/labstack/echo/v4"
)

// server is a system's server: net/http for the Echo systems, fasthttp for
// fiber's.
type server interface {
	serve(ln net.Listener) error
	close() error
}

type echoServer struct {
	e       *echo.Echo
	srv     http.Server
	closers []func() error
}

func (s *echoServer) serve(ln net.Listener) error {
	s.srv.Handler = s.e
	s.srv.ReadHeaderTimeout = 10 * time.Second
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *echoServer) close() error {
	errs := []error{s.srv.Close()}
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

type fiberServer struct{ app *fiber.App }

func (s *fiberServer) serve(ln net.Listener) error { return s.app.Listener(ln) }

// close waits for open connections a moment only: fasthttp's Shutdown
// otherwise waits for idle keep-alive connections to time out.
func (s *fiberServer) close() error { return s.app.ShutdownWithTimeout(time.Second) }

// Running is a system serving the page on a loopback port.
type Running struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string

	o    *origin
	srv  server
	done chan error
}

// Start serves sys's page of size bytes on a free loopback port, in this
// process. It fails when sys needs a store that env does not name, or when
// the store cannot be reached.
func Start(sys System, size int, env Env) (*Running, error) {
	if !env.Has(sys.Store) {
		return nil, fmt.Errorf("peers: %s needs a %s server (set ECHOCACHE_REDIS_URL / ECHOCACHE_MEMCACHED_ADDR, or run under scripts/with-servers.sh)", sys.Key, sys.Store)
	}
	o := &origin{body: Page(size)}
	srv, err := sys.start(o, env)
	if err != nil {
		return nil, fmt.Errorf("peers: %s: %w", sys.Key, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.close()
		return nil, err
	}
	r := &Running{URL: "http://" + ln.Addr().String(), o: o, srv: srv, done: make(chan error, 1)}
	go func() { r.done <- srv.serve(ln) }()
	return r, nil
}

// Close stops the server and closes its store clients.
func (r *Running) Close() error {
	err := r.srv.close()
	return errors.Join(err, <-r.done)
}
