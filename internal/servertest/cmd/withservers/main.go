// Command withservers runs a command with the shared test servers of
// package servertest: it starts them all on free loopback ports, runs the
// command with the environment variables that name them
// (ECHOCACHE_REDIS_URL, ECHOCACHE_REDIS_CLUSTER_ADDRS, ...; see
// servertest.Env*), and stops them when the command ends, exiting with the
// command's status.
//
//	withservers [-unlink] command [argument...]
//
// SIGINT and SIGTERM are passed on to the command; the servers are stopped
// once it has exited (a second signal, or ten seconds, kill it first). On
// Linux the servers and the command are killed if withservers itself dies.
//
// A server whose program is not installed is left out with a warning and
// its variables unset (the tests that need it then skip, naming it); with
// CI=true that is an error instead. -unlink removes withservers' own
// executable once it runs, for scripts that build it into a temporary
// directory and exec it (scripts/with-servers.sh).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// killAfter is how long the command has to exit after a signal was passed
// on before it is killed.
const killAfter = 10 * time.Second

func main() {
	unlink := flag.Bool("unlink", false, "remove this executable (and its directory, if then empty) at start")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: withservers [-unlink] command [argument...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *unlink {
		removeSelf()
	}
	os.Exit(run(flag.Args()))
}

func run(args []string) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	// A signal while the servers start cancels the start.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	sh, err := servertest.StartShared(ctx)
	interrupted := ctx.Err() != nil
	cancel()
	if err != nil || interrupted {
		if sh != nil {
			sh.Stop()
		}
		if interrupted {
			fmt.Fprintln(os.Stderr, "withservers: interrupted while starting the servers")
			return 130
		}
		fmt.Fprintln(os.Stderr, "withservers:", err)
		return 1
	}
	defer sh.Stop()
	fmt.Fprintln(os.Stderr, "withservers:", sh)
	if len(sh.Missing()) > 0 && os.Getenv("CI") == "true" {
		fmt.Fprintln(os.Stderr, "withservers: CI=true, and servers are missing:", errors.Join(sh.Missing()...))
		return 1
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), sh.Env()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	servertest.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "withservers:", err)
		return 127
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var killTimer <-chan time.Time
	signalled := false
	for {
		select {
		case sig := <-sigs:
			if signalled {
				_ = cmd.Process.Kill()
				continue
			}
			signalled = true
			_ = cmd.Process.Signal(sig)
			killTimer = time.After(killAfter)
		case <-killTimer:
			fmt.Fprintf(os.Stderr, "withservers: %s did not exit within %v of the signal; killing it\n", args[0], killAfter)
			_ = cmd.Process.Kill()
		case err := <-exited:
			return status(err)
		}
	}
}

// status is the exit status for the command's exit: its own, or 128 plus
// the signal that killed it, as shells report it.
func status(err error) int {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		if err != nil {
			return 1
		}
		return 0
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exit.ExitCode()
}

// removeSelf removes the running executable and its directory, if empty.
func removeSelf() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if os.Remove(exe) == nil {
		_ = os.Remove(filepath.Dir(exe))
	}
}
