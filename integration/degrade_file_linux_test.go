package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// envFileFault names the fault a helper run of TestDegradeFileWritesFail
// puts on its file store: "full" or "read-only".
const envFileFault = "ECHOCACHE_DEGRADE_FILE_FAULT"

// Pages of the file-store test: the first filePrimed are stored before
// writes start to fail.
const (
	filePages  = 10
	filePrimed = 2
)

// TestDegradeFileWritesFail serves pages from a file store whose writes
// fail while its reads work, under the steady load: a full disk (the
// kernel refuses writes with EFBIG under a file size limit, as it refuses
// them with ENOSPC on a full disk) and a read-only directory (EACCES).
// Failing writes must not stop reads: every request for a page stored
// before the fault is a hit, and the hit share is what those pages allow.
// Each fault runs in a process of its own (this test binary again), since
// a file size limit and a change of user are the process's.
func TestDegradeFileWritesFail(t *testing.T) {
	if fault := os.Getenv(envFileFault); fault != "" {
		fileWritesFail(t, fault)
		return
	}
	for _, fault := range []string{"full", "read-only"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestDegradeFileWritesFail$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), envFileFault+"="+fault)
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			require.NoError(t, err, "the helper process failed")
		})
	}
}

// fileWritesFail is the helper process: it primes a file store, makes its
// writes fail, and measures the hit share under the steady load.
func fileWritesFail(t *testing.T, fault string) {
	if fault == "read-only" && os.Geteuid() == 0 {
		// Permissions do not bind root: become nobody (the whole process,
		// which does nothing else).
		require.NoError(t, syscall.Setgroups(nil))
		require.NoError(t, syscall.Setgid(65534))
		require.NoError(t, syscall.Setuid(65534))
	}
	dir, err := os.MkdirTemp("", "echocache-degrade-file-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	store, err := stores.NewFile(stores.FileConfig{Dir: dir, MaxEntries: 1000})
	require.NoError(t, err)
	defer store.Close()
	c, err := echocache.NewWithConfig(store, echocache.Config{Logger: quietLogger})
	require.NoError(t, err)
	base := pagesServer(t, c)

	prime := startSteadyLoad(base, filePrimed)
	awaitHits(t, prime, time.Now(), 10*time.Second)
	prime.finish()

	switch fault {
	case "full":
		var lim syscall.Rlimit
		require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim))
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1, Max: lim.Max}))
		defer syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
	case "read-only":
		ns, err := filepath.Glob(filepath.Join(dir, "ns-*"))
		require.NoError(t, err)
		require.Len(t, ns, 1)
		require.NoError(t, os.Chmod(ns[0], 0o500))
		defer os.Chmod(ns[0], 0o700)
	}
	require.Error(t, store.Set(t.Context(), "probe-the-fault", []byte("v"), 0), "a write to a %s store", fault)

	l := startSteadyLoad(base, filePages)
	start := time.Now()
	pollUntil(t, 30*time.Second, "100 requests", func(context.Context) bool { return len(l.since(start)) >= 100 })
	reqs := l.finish()
	checkWhole(t, reqs)
	hits, primedReqs, primedHits := 0, 0, 0
	for _, r := range reqs {
		if r.hit {
			hits++
		}
		if r.page < filePrimed {
			primedReqs++
			if r.hit {
				primedHits++
			}
		}
	}
	share := float64(hits) / float64(len(reqs))
	t.Logf("%s: %d requests, %.1f %% hits (the stored pages allow %.0f %%); %d of %d requests for stored pages were hits; writes skipped: %v",
		fault, len(reqs), 100*share, 100.0*filePrimed/filePages, primedHits, primedReqs, (*core.Cache)(c).WritesOpen())
	assert.Equal(t, primedReqs, primedHits, "requests for pages stored before the fault that were not hits")
	assert.False(t, (*core.Cache)(c).ReadsOpen(), "failing writes stopped reads")
}
