package stores_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// The entry-count tests: writers of new keys race on a File store with a
// small MaxEntries, in one process and in several, while the test lists
// the directory as fast as it can; the namespace must never hold more than
// 1.5 × MaxEntries entries (the store promises MaxEntries).

const (
	countMax     = 20  // MaxEntries
	countWriters = 8   // goroutines per process
	countWrites  = 150 // new keys per goroutine
)

// countEntries returns the number of entry files under dir.
func countEntries(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		if name := de.Name(); len(name) == 64 && !de.IsDir() {
			n++
		}
		return nil
	})
	assert.NoError(t, err)
	return n
}

// watchEntries lists dir until stop is closed and returns the largest
// number of entries it saw, and how many listings it made.
func watchEntries(t *testing.T, dir string, stop <-chan struct{}) (peak, listings int) {
	for {
		select {
		case <-stop:
			return peak, listings
		default:
		}
		peak = max(peak, countEntries(t, dir))
		listings++
	}
}

// writeNewKeys writes countWrites new keys from each of countWriters
// goroutines, started together, named after id.
func writeNewKeys(f *stores.File, id string) error {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := make(chan struct{})
	for w := range countWriters {
		wg.Go(func() {
			<-start
			for i := range countWrites {
				key := fmt.Sprintf("%s-%d-%d", id, w, i)
				if err := f.Set(context.Background(), key, []byte("value"), stores.NoExpiry); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// TestFileEntryBoundConcurrentWriters races countWriters goroutines of
// one process writing new keys.
func TestFileEntryBoundConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	f, err := stores.NewFile(stores.FileConfig{Dir: dir, MaxEntries: countMax})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })

	stop := make(chan struct{})
	var peak, listings int
	var wg sync.WaitGroup
	wg.Go(func() { peak, listings = watchEntries(t, dir, stop) })
	err = writeNewKeys(f, "k")
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	t.Logf("%d writers, %d new keys each, max_entries=%d: at most %d entries in %d listings; %d at the end",
		countWriters, countWrites, countMax, peak, listings, countEntries(t, dir))
	assert.LessOrEqual(t, peak, countMax*3/2, "entries at one moment")
	assert.LessOrEqual(t, countEntries(t, dir), countMax, "entries at the end")
}

// The helper process of TestFileEntryBoundProcesses: this test binary run
// again with ECHOCACHE_FILE_COUNT_HELPER set to the shared directory. It
// waits for the file "go" there, then writes new keys.
func TestFileEntryBoundHelper(t *testing.T) {
	dir := os.Getenv("ECHOCACHE_FILE_COUNT_HELPER")
	if dir == "" {
		return // not a helper: nothing to do
	}
	f, err := stores.NewFile(stores.FileConfig{Dir: dir, MaxEntries: countMax})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		time.Sleep(time.Millisecond) // the start barrier: polls a file
	}
	if err := writeNewKeys(f, "p"+os.Getenv("ECHOCACHE_FILE_COUNT_ID")); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// TestFileEntryBoundProcesses races 3 processes of countWriters
// goroutines each, writing new keys to one directory.
func TestFileEntryBoundProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs = 3
	dir := t.TempDir()
	outs := make([]bytes.Buffer, procs)
	cmds := make([]*exec.Cmd, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileEntryBoundHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ECHOCACHE_FILE_COUNT_HELPER="+dir, "ECHOCACHE_FILE_COUNT_ID="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	stop := make(chan struct{})
	var peak, listings int
	var wg sync.WaitGroup
	wg.Go(func() { peak, listings = watchEntries(t, dir, stop) })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o600))
	for i, cmd := range cmds {
		assert.NoError(t, cmd.Wait(), "helper %d: %s", i, outs[i].String())
	}
	close(stop)
	wg.Wait()
	t.Logf("%d processes of %d writers, %d new keys each, max_entries=%d: at most %d entries in %d listings; %d at the end",
		procs, countWriters, countWrites, countMax, peak, listings, countEntries(t, dir))
	assert.LessOrEqual(t, peak, countMax*3/2, "entries at one moment")
	assert.LessOrEqual(t, countEntries(t, dir), countMax, "entries at the end")
}
