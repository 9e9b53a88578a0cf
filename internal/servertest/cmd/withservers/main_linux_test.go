package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLauncherDeath checks that the servers and the command die with the
// launcher, even when it is killed with SIGKILL and cannot clean up.
func TestLauncherDeath(t *testing.T) {
	t.Parallel()
	cmd, dir := launcher(t, `echo $$ > "$TEST_DIR/pid" && exec sleep 60`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := serverAddrs(t, dir)
	pid, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	deadline := time.Now().Add(10 * time.Second)
	gone := func(what string, alive func() bool) {
		for alive() {
			if time.Now().After(deadline) {
				t.Fatalf("%s still alive 10 s after the launcher was killed", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, a := range addrs {
		gone("the server on "+a, func() bool { return answers(a) })
	}
	stat := "/proc/" + strings.TrimSpace(string(pid)) + "/stat"
	gone("the command", func() bool {
		b, err := os.ReadFile(stat) // gone, or a zombie ("pid (sleep) Z ...")
		return err == nil && !strings.Contains(string(b), ") Z ")
	})
}
