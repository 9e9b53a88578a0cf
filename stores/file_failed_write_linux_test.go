package stores_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// The helper process of TestFileFailedWriteRemovesOldValue: this test
// binary run again with ECHOCACHE_FILE_FSIZE_HELPER set to the directory.
// It lowers its own file size limit (RLIMIT_FSIZE) to 1 MiB, so the kernel
// refuses a longer write with EFBIG, as a full disk would refuse it with
// ENOSPC, and tries to replace small values with 2 MiB ones.
func TestFileFailedWriteHelper(t *testing.T) {
	dir := os.Getenv("ECHOCACHE_FILE_FSIZE_HELPER")
	if dir == "" {
		return // not a helper: nothing to do
	}
	fail := func(format string, args ...any) {
		fmt.Printf("error: "+format+"\n", args...)
		os.Exit(2)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}); err != nil {
		fail("setrlimit: %v", err)
	}
	f, err := stores.NewFile(stores.FileConfig{Dir: dir})
	if err != nil {
		fail("%v", err)
	}
	ctx := context.Background()
	big := make([]byte, 2<<20)
	if err := f.Set(ctx, "k", big, stores.NoExpiry); err == nil {
		fail("Set of 2 MiB under a 1 MiB file size limit succeeded")
	}
	if err := f.SetMany(ctx, map[string][]byte{"m": big, "n": big}, stores.NoExpiry); err == nil {
		fail("SetMany of 2 MiB values under a 1 MiB file size limit succeeded")
	}
	os.Exit(0)
}

// TestFileFailedWriteRemovesOldValue checks that a write the file system
// refuses leaves the key a miss, not its previous value, through Set and
// SetMany (every key SetMany did not write).
func TestFileFailedWriteRemovesOldValue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	f := newFile(t, stores.FileConfig{Dir: dir})
	ctx := t.Context()
	for _, k := range []string{"k", "m", "n"} {
		require.NoError(t, f.Set(ctx, k, []byte("old"), stores.NoExpiry))
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestFileFailedWriteHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ECHOCACHE_FILE_FSIZE_HELPER="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper: %s", out)

	for _, k := range []string{"k", "m", "n"} {
		v, err := f.Get(ctx, k)
		require.True(t, errors.Is(err, stores.ErrNotFound), "Get(%q) = %q, %v after a refused write; want a miss", k, v, err)
	}
}
