package stores

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/record"
)

func testFile(t *testing.T, cfg FileConfig) *File {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	f, err := NewFile(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// fakeClock is a settable clock for File.now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func entryPath(f *File, key string) string { return f.path(keyHash(key)) }

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, fs.ErrNotExist)
	return false
}

// entryFiles lists the entry files of f's namespace.
func entryFiles(t *testing.T, f *File) []string {
	t.Helper()
	des, err := os.ReadDir(f.ns)
	require.NoError(t, err)
	var out []string
	for _, de := range des {
		if isEntryName(de.Name()) {
			out = append(out, de.Name())
		}
	}
	return out
}

func TestFileCorruptEntryIsMissAndRemoved(t *testing.T) {
	valid := encodeFileEntry("k", []byte("some value"), 0)
	other := encodeFileEntry("another key", []byte("some value"), 0)
	lying := bytes.Clone(valid)
	lying[16] = 200 // value length no longer matches the file
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-6] ^= 1 // a value byte: the checksum catches it
	tests := []struct {
		name string
		data []byte
	}{
		{"nok, empty file", nil},
		{"nok, truncated header", valid[:10]},
		{"nok, truncated value", valid[:len(valid)-5]},
		{"nok, missing checksum", valid[:len(valid)-fileTrailerLen]},
		{"nok, garbage", []byte("this is not an entry file at all, just text")},
		{"nok, wrong magic", append([]byte("XXXX"), valid[4:]...)},
		{"nok, length field lies", lying},
		{"nok, flipped value byte", flipped},
		{"nok, entry of another key", other},
		{"nok, trailing bytes", append(bytes.Clone(valid), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFile(t, FileConfig{})
			ctx := context.Background()
			path := entryPath(f, "k")
			require.NoError(t, os.WriteFile(path, tt.data, 0o600))

			_, err := f.Get(ctx, "k")
			require.ErrorIs(t, err, ErrNotFound)
			assert.False(t, exists(t, path), "a corrupt file must be removed on Get")

			require.NoError(t, os.WriteFile(path, tt.data, 0o600))
			got, err := f.GetMany(ctx, []string{"k"})
			require.NoError(t, err)
			assert.Empty(t, got)

			require.NoError(t, os.WriteFile(path, tt.data, 0o600))
			ok, err := f.Add(ctx, "k", []byte("new"), NoExpiry)
			require.NoError(t, err)
			assert.True(t, ok, "Add over a corrupt file")

			require.NoError(t, os.WriteFile(path, tt.data, 0o600))
			n, err := f.Incr(ctx, "k", 4)
			require.NoError(t, err)
			assert.Equal(t, int64(4), n, "Incr over a corrupt file starts at delta")
		})
	}
}

func TestFileDecodeValid(t *testing.T) {
	b := encodeFileEntry("key", []byte("val\x00ue"), 12345)
	val, exp, err := decodeFileEntry(b, "key")
	require.NoError(t, err)
	assert.Equal(t, []byte("val\x00ue"), val)
	assert.Equal(t, int64(12345), exp)
	assert.Equal(t, len(val), cap(val), "the value must not reach into the checksum")
}

// previousFormat is an entry file as the store wrote it before its entries
// were framed like every record: the same layout under the magic "ecf1".
func previousFormat(key string, val []byte, exp int64) []byte {
	b := encodeFileEntry(key, val, exp)
	copy(b, fileOldMagic)
	end := len(b) - fileTrailerLen
	return binary.LittleEndian.AppendUint32(b[:end], record.Checksum(b[:end]))
}

func TestFileDecodePreviousFormat(t *testing.T) {
	val, exp, err := decodeFileEntry(previousFormat("key", []byte("old"), 7), "key")
	require.NoError(t, err, "ok, a file of the previous format still decodes")
	assert.Equal(t, []byte("old"), val)
	assert.Equal(t, int64(7), exp)
	b := previousFormat("key", []byte("old"), 7)
	b[len(b)-1] ^= 1
	_, _, err = decodeFileEntry(b, "key")
	assert.ErrorIs(t, err, errCorrupt, "nok, its checksum is still checked")
}

func FuzzDecodeFileEntry(f *testing.F) {
	f.Add(encodeFileEntry("k", []byte("v"), 0), "k")
	f.Add(encodeFileEntry("", nil, -1), "")
	f.Add(encodeFileEntry("key", bytes.Repeat([]byte{0}, 100), 1<<62), "key")
	f.Add([]byte("ecf1"), "k")
	f.Add(previousFormat("k", []byte("v"), 0), "k")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		val, exp, err := decodeFileEntry(b, key)
		if err != nil {
			return
		}
		// Whatever decodes must be exactly what encode writes (or wrote,
		// in the previous format).
		want := encodeFileEntry(key, val, exp)
		if bytes.HasPrefix(b, []byte(fileOldMagic)) {
			want = previousFormat(key, val, exp)
		}
		if !bytes.Equal(want, b) {
			t.Fatalf("decode(%q) accepted a file encode would not write", b)
		}
	})
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "nested")
	f := testFile(t, FileConfig{Dir: dir})
	require.NoError(t, f.Set(context.Background(), "k", []byte("v"), NoExpiry))
	_, err := f.Incr(context.Background(), "n", 1)
	require.NoError(t, err)

	for _, d := range []string{dir, f.ns} {
		info, err := os.Stat(d)
		require.NoError(t, err)
		assert.Zero(t, info.Mode().Perm()&0o077, "%s is %v; want no group or other access", d, info.Mode().Perm())
	}
	err = filepath.WalkDir(f.ns, func(path string, de fs.DirEntry, err error) error {
		require.NoError(t, err)
		if de.IsDir() {
			return nil
		}
		info, err := de.Info()
		require.NoError(t, err)
		assert.Zero(t, info.Mode().Perm()&0o077, "%s is %v; want 0600", path, info.Mode().Perm())
		return nil
	})
	require.NoError(t, err)
}

func TestFileKeysNeverReachPaths(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	f := testFile(t, FileConfig{Dir: dir, Prefix: "../../prefix/"})
	ctx := context.Background()
	keys := []string{"../../escape", "/etc/passwd", "a/b/c", "..", ".", "", "x\x00y", strings.Repeat("k", 5000)}
	for _, k := range keys {
		require.NoError(t, f.Set(ctx, k, []byte(k), NoExpiry), "Set(%q)", k)
	}
	for _, k := range keys {
		v, err := f.Get(ctx, k)
		require.NoError(t, err, "Get(%q)", k)
		assert.Equal(t, []byte(k), v)
	}
	// Nothing outside dir, and inside it only hashed names.
	des, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, des, 1)
	err = filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		switch {
		case rel == ".":
		case len(parts) == 1:
			assert.Regexp(t, `^ns-[0-9a-f]{32}$`, parts[0])
		case len(parts) == 2:
			assert.Regexp(t, `^([0-9a-f]{64}|lock-[0-9a-f]{2}|entries)$`, parts[1])
		default:
			t.Errorf("unexpected path %s", rel)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestFilePruneExpiredFirstThenOldest(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	f := testFile(t, FileConfig{MaxEntries: -1})
	f.now = clock.Now
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)

	// 15 entries, written a second apart; the three newest have expired.
	for i := range 15 {
		ttl := NoExpiry
		if i >= 12 {
			ttl = time.Minute
		}
		key := fmt.Sprintf("k%02d", i)
		require.NoError(t, f.Set(ctx, key, []byte("v"), ttl))
		mt := base.Add(time.Duration(i) * time.Second)
		require.NoError(t, os.Chtimes(entryPath(f, key), mt, mt))
	}
	clock.Add(2 * time.Minute)

	f.max = 10
	require.Equal(t, int64(9), f.prune(ctx), "entries left")

	// Down to nine tenths of 10: the 3 expired go, then the 3 oldest.
	var left []string
	for i := range 15 {
		key := fmt.Sprintf("k%02d", i)
		if exists(t, entryPath(f, key)) {
			left = append(left, key)
		}
	}
	assert.Equal(t, []string{"k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11"}, left)
}

func TestFilePruneLeavesNamespaceAtThreshold(t *testing.T) {
	for _, max := range []int{1, 10, 100} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			f := testFile(t, FileConfig{MaxEntries: max})
			ctx := context.Background()
			for i := range 5 * max {
				require.NoError(t, f.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), NoExpiry))
				require.LessOrEqual(t, len(entryFiles(t, f)), max, "entries after write %d", i)
			}
			// The newest entry always survives.
			_, err := f.Get(ctx, fmt.Sprintf("k%d", 5*max-1))
			require.NoError(t, err)
		})
	}
}

func TestFileScansOnlyWhenWritesMayExceedThreshold(t *testing.T) {
	ctx := context.Background()

	f := testFile(t, FileConfig{MaxEntries: 100})
	for i := range 500 {
		require.NoError(t, f.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), NoExpiry))
	}
	// Each scan leaves at least a tenth of the threshold to write.
	assert.LessOrEqual(t, f.scans.Load(), int64(1+500/10), "scans for 500 new keys")

	g := testFile(t, FileConfig{MaxEntries: 100})
	for range 500 {
		require.NoError(t, g.Set(ctx, "same", []byte("v"), NoExpiry))
	}
	assert.LessOrEqual(t, g.scans.Load(), int64(1+500/99), "scans for 500 overwrites of one key")

	h := testFile(t, FileConfig{MaxEntries: -1})
	for i := range 100 {
		require.NoError(t, h.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), NoExpiry))
	}
	assert.Zero(t, h.scans.Load(), "scans with pruning off")
	assert.Len(t, entryFiles(t, h), 100)
}

func TestFilePruneRemovesStaleTempFiles(t *testing.T) {
	f := testFile(t, FileConfig{MaxEntries: 10})
	stale := filepath.Join(f.ns, fileTempPrefix+"stale")
	fresh := filepath.Join(f.ns, fileTempPrefix+"fresh")
	require.NoError(t, os.WriteFile(stale, []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(fresh, []byte("x"), 0o600))
	old := time.Now().Add(-2 * fileStaleTemp)
	require.NoError(t, os.Chtimes(stale, old, old))
	f.prune(context.Background())
	assert.False(t, exists(t, stale), "a temp file left by a dead writer")
	assert.True(t, exists(t, fresh), "a temp file a writer may still rename")
}

func TestFileExpiryWithClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	f := testFile(t, FileConfig{DefaultTTL: time.Hour})
	f.now = clock.Now
	ctx := context.Background()
	require.NoError(t, f.Set(ctx, "default", []byte("v"), DefaultTTL))
	require.NoError(t, f.Set(ctx, "minute", []byte("v"), time.Minute))
	require.NoError(t, f.Set(ctx, "never", []byte("v"), NoExpiry))
	require.NoError(t, f.Set(ctx, "counter", []byte("1"), time.Minute))
	_, err := f.Incr(ctx, "counter", 1)
	require.NoError(t, err)

	clock.Add(time.Minute - time.Nanosecond)
	for _, k := range []string{"default", "minute", "never", "counter"} {
		_, err := f.Get(ctx, k)
		require.NoError(t, err, "%s just before a minute", k)
	}
	clock.Add(time.Nanosecond)
	for _, k := range []string{"minute", "counter"} {
		_, err := f.Get(ctx, k)
		require.ErrorIs(t, err, ErrNotFound, "%s at a minute", k)
		assert.False(t, exists(t, entryPath(f, k)), "an expired file read by Get is removed")
	}
	clock.Add(time.Hour)
	_, err = f.Get(ctx, "default")
	require.ErrorIs(t, err, ErrNotFound, "DefaultTTL of an hour")
	_, err = f.Get(ctx, "never")
	require.NoError(t, err)
}

func TestFileRecreatesRemovedDirectory(t *testing.T) {
	f := testFile(t, FileConfig{})
	ctx := context.Background()
	require.NoError(t, os.RemoveAll(f.ns))
	_, err := f.Get(ctx, "k")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, f.Set(ctx, "k", []byte("v"), NoExpiry))
	v, err := f.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), v)
	require.NoError(t, f.Clear(ctx))

	for name, op := range map[string]func() error{
		"Add":    func() error { _, err := f.Add(ctx, "a", nil, NoExpiry); return err },
		"Incr":   func() error { _, err := f.Incr(ctx, "n", 1); return err },
		"Delete": func() error { return f.Delete(ctx, "k") },
	} {
		require.NoError(t, os.RemoveAll(f.ns))
		require.NoError(t, op(), "%s after the directory was removed", name)
	}
}

func TestNewFileRejects(t *testing.T) {
	_, err := NewFile(FileConfig{})
	require.ErrorContains(t, err, "Dir is required")

	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	_, err = NewFile(FileConfig{Dir: notDir})
	require.Error(t, err, "a Dir that is a file")
}

// The helper process for TestFileCrossProcess: it is this test binary, run
// again with ECHOCACHE_FILE_HELPER set to the shared directory.
func TestFileHelperProcess(t *testing.T) {
	dir := os.Getenv("ECHOCACHE_FILE_HELPER")
	if dir == "" {
		return // not a helper: nothing to do
	}
	f, err := NewFile(FileConfig{Dir: dir, Prefix: "shared"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	// Wait for the start signal so that the processes race.
	for !fileExists(filepath.Join(dir, "go")) {
		time.Sleep(time.Millisecond)
	}
	won, err := f.Add(ctx, "lock", []byte(os.Getenv("ECHOCACHE_FILE_HELPER_ID")), NoExpiry)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	for range 100 {
		if _, err := f.Incr(ctx, "counter", 1); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
	}
	fmt.Printf("won=%v\n", won)
	os.Exit(0)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestFileCrossProcess(t *testing.T) {
	if !crossProcessLocks {
		t.Skip("no flock on this system: File is atomic only within a process")
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	const procs = 4
	outs := make([]bytes.Buffer, procs)
	cmds := make([]*exec.Cmd, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ECHOCACHE_FILE_HELPER="+dir, "ECHOCACHE_FILE_HELPER_ID="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o600))
	winners := 0
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "helper %d: %s", i, outs[i].String())
		if strings.Contains(outs[i].String(), "won=true") {
			winners++
		}
	}
	assert.Equal(t, 1, winners, "processes that won Add of one key")

	f := testFile(t, FileConfig{Dir: dir, Prefix: "shared"})
	n, err := f.Incr(context.Background(), "counter", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(procs*100), n, "Incr from %d processes lost updates", procs)
}
