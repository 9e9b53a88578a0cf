package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Timeouts of starting one server process.
const (
	startTimeout  = 10 * time.Second // until a started process answers
	startAttempts = 5                // ports tried before giving up
	pollInterval  = 10 * time.Millisecond
)

// A Server is a server process this package started on 127.0.0.1: a
// redis-server (plain, a Redis Cluster node or a replica), a Redis
// Sentinel or a memcached. Fault tests start their own with the Start
// functions, break it with Kill or Pause and mend it with Restart or
// Resume. The process is killed when the test ends (Start functions) and,
// on Linux, whenever the process that started it exits (KillWithParent).
//
// A Server is safe for concurrent use.
type Server struct {
	name  string                      // what messages call it: "memcached -S"
	path  string                      // the program
	dir   string                      // its working directory: data, configuration
	env   []string                    // added to the environment
	args  func(port int) []string     // its arguments for a port; may write files in dir
	pick  func() (int, error)         // finds a free port
	probe func(net.Conn) (int, error) // asks the server its process id

	mu     sync.Mutex
	port   int
	argv   []string // the arguments, fixed once the server has started
	proc   *os.Process
	exited chan struct{} // closed when proc has exited
	paused bool
	out    tailBuffer
}

// Addr returns the server's address, "127.0.0.1:port". It does not change
// when the server is killed or restarted.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
}

// Port returns the server's TCP port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Dir returns the server's working directory, which holds its data and
// configuration files.
func (s *Server) Dir() string { return s.dir }

// Output returns the last 64 KiB the server wrote to its standard output
// and error, for messages of failing tests.
func (s *Server) Output() string { return s.out.String() }

// Kill stops the server with SIGKILL, the way a crash or an OOM kill does
// (no shutdown, no goodbye to its clients, nothing saved), and waits until
// the process is gone. A paused server is killed too. Killing a server that
// is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

func (s *Server) kill() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.paused = nil, false
}

// Restart starts the server again on the same port with the same arguments
// and working directory (a Redis Cluster node keeps its cluster
// configuration file; a server without persistence comes back empty), and
// waits until it answers. A running server is killed first. It tries for
// ten seconds, in case another process holds the port meanwhile.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := s.launch(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servertest: restarting %s on %s: %w", s.name, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pause stops the server with SIGSTOP: it keeps its port and the kernel
// keeps accepting connections for it, but it answers nothing, as a wedged
// or swapping server does, until Resume. It fails where there is no
// SIGSTOP (Windows: errors.ErrUnsupported) or when the server is not
// running.
func (s *Server) Pause() error { return s.signal(pauseSignal, true) }

// Resume lets a paused server go on with SIGCONT; it then answers what it
// was sent meanwhile.
func (s *Server) Resume() error { return s.signal(resumeSignal, false) }

func (s *Server) signal(sig os.Signal, paused bool) error {
	if sig == nil {
		return fmt.Errorf("servertest: pausing a server: %w", errors.ErrUnsupported)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return fmt.Errorf("servertest: %s on port %d is not running", s.name, s.port)
	}
	if err := s.proc.Signal(sig); err != nil {
		return fmt.Errorf("servertest: signalling %s: %w", s.name, err)
	}
	s.paused = paused
	return nil
}

// running reports whether the server is started and not paused.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.paused
}

// missingError says a program is not installed.
type missingError struct{ program string }

func (e *missingError) Error() string {
	return e.program + " is not installed (make test installs it with apt-get as root)"
}

// lookPath finds a program on PATH, or in the sbin directories that
// Debian's sasl2-bin installs to and a non-root PATH may not hold.
func lookPath(program string) (string, error) {
	if p, err := exec.LookPath(program); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &missingError{program}
}

// start runs the server on a free port and waits until it answers,
// trying other ports when the port is taken before the server binds it.
func (s *Server) start(ctx context.Context) error {
	if s.pick == nil {
		s.pick = FreePort
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for range startAttempts {
		if s.port, err = s.pick(); err != nil {
			return err
		}
		s.argv = s.args(s.port)
		actx, cancel := context.WithTimeout(ctx, startTimeout)
		err = s.launch(actx)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, errRefused) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("servertest: starting %s: %w", s.name, err)
	}
	return nil
}

// launch starts the process on s.port and waits until it answers there
// with its own process id (not merely until something listens: another
// process may hold the port). s.mu is held.
func (s *Server) launch(ctx context.Context) error {
	cmd := exec.Command(s.path, s.argv...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	cmd.WaitDelay = time.Second // a forked child (a replication transfer) may hold the output pipe
	KillWithParent(cmd)
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	if err := waitReady(ctx, addr, cmd.Process.Pid, exited, s.probe); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("on %s: %w\n%s", addr, err, s.out.String())
	}
	s.proc, s.exited, s.paused = cmd.Process, exited, false
	return nil
}

// waitReady polls addr until the server there reports process id pid.
func waitReady(ctx context.Context, addr string, pid int, exited <-chan struct{}, probe func(net.Conn) (int, error)) error {
	var last error
	for {
		got, err := ask(ctx, addr, probe)
		switch {
		case err == nil && got == pid:
			return nil
		case err == nil:
			return fmt.Errorf("port taken by process %d", got)
		case errors.Is(err, errRefused):
			return err
		}
		last = err
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("no answer: %w", last)
		case <-time.After(pollInterval):
		}
	}
}

// ask opens a connection to addr and runs probe on it, bounded by a second.
func ask(ctx context.Context, addr string, probe func(net.Conn) (int, error)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	return probe(conn)
}

// tailBuffer keeps the last 64 KiB written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailSize = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - tailSize; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
