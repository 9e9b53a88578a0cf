package stores

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FileConfig configures a [File] store.
type FileConfig struct {
	// Dir is the directory that holds the cache. It is created (mode 0700)
	// when missing. Several processes may share it.
	// Required.
	Dir string

	// MaxEntries is the most entries the namespace holds, across every
	// process that shares the directory (Flask-Cache's CACHE_THRESHOLD): a
	// write that would pass it first prunes the namespace to nine tenths
	// of it, expired entries first, then the oldest. A negative value
	// turns pruning off.
	// Optional. Default value 500.
	MaxEntries int

	// DefaultTTL is the lifetime of entries written with ttl == DefaultTTL.
	// Optional. Default value 0 (such entries never expire).
	DefaultTTL time.Duration

	// Prefix is the store's namespace. Stores with different prefixes can
	// share Dir; Clear removes only its own namespace.
	// Optional. Default value "".
	Prefix string
}

// DefaultFileMaxEntries is the default of [FileConfig.MaxEntries], the
// default threshold of Flask-Cache's filesystem cache.
const DefaultFileMaxEntries = 500

// File is a store in a directory that several processes can share. It is
// safe for concurrent use.
//
// Layout: each namespace (prefix) is a subdirectory of Dir named after the
// SHA-256 of the prefix, and each entry a file in it named after the SHA-256
// of the key, so no key ever reaches a path. An entry file holds its expiry,
// its key and its value, followed by a CRC-32C checksum; a truncated or
// garbage file is a miss, and is removed. Files are written to a temporary
// file and renamed into place, so readers never see half a write; files are
// created 0600 and directories 0700.
//
// Writes, Add and Incr take a lock on the key (one of 64 lock files of the
// namespace, held with flock(2) on Linux, macOS and the BSDs), so Add and
// Incr are atomic across processes. On other systems the lock is only
// in-process and several processes sharing a directory can race.
//
// The namespace never holds more than MaxEntries entries, however many
// goroutines and processes write to it: the store keeps the number of its
// entry files in a count file, under a lock the processes share, and a
// write that would take it over MaxEntries first prunes the namespace to
// nine tenths of MaxEntries, expired entries first, then the oldest
// (file_prune.go). On systems without flock this holds within a process
// only.
type File struct {
	ns     string // namespace directory
	def    time.Duration
	max    int // 0: no pruning
	now    func() time.Time
	closed atomic.Bool

	locks [fileLockStripes]sync.Mutex

	countMu sync.Mutex   // the count file's lock within the process (file_prune.go)
	scans   atomic.Int64 // directory scans so far, for tests
}

const (
	fileLockStripes = 64
	// fileStaleTemp is the age at which a temporary file is taken to be
	// left behind by a writer that died, and is removed by pruning.
	fileStaleTemp  = time.Hour
	fileTempPrefix = ".tmp-"
)

// NewFile returns a File store. It creates the directory and the namespace
// subdirectory.
//
// URL forms (parameters max_entries, where 0 turns pruning off; default_ttl;
// prefix):
//
//	file:///var/cache/myapp?max_entries=500   absolute directory
//	file:cache/myapp?prefix=app:              relative to the working directory
//	file://./cache/myapp                      the same
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Dir == "" {
		return nil, errors.New("stores: file: FileConfig.Dir is required")
	}
	if abs, err := filepath.Abs(cfg.Dir); err == nil && filepath.Dir(abs) == abs {
		return nil, fmt.Errorf("stores: file: Dir %q is the filesystem root; want a directory of the cache's own, such as /var/cache/myapp", cfg.Dir)
	}
	switch {
	case cfg.MaxEntries == 0:
		cfg.MaxEntries = DefaultFileMaxEntries
	case cfg.MaxEntries < 0:
		cfg.MaxEntries = 0
	}
	sum := sha256.Sum256([]byte("echocache-namespace\x00" + cfg.Prefix))
	f := &File{
		ns:  filepath.Join(cfg.Dir, "ns-"+hex.EncodeToString(sum[:16])),
		def: cfg.DefaultTTL,
		max: cfg.MaxEntries,
		now: time.Now,
	}
	if err := os.MkdirAll(f.ns, 0o700); err != nil {
		return nil, fmt.Errorf("stores: file: %w", err)
	}
	return f, nil
}

func (f *File) check(ctx context.Context) error {
	if f.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (f *File) expired(exp int64) bool {
	return exp != 0 && f.now().UnixNano() >= exp
}

// expiry returns the expiry time (Unix ns, 0 = never) of an entry written
// now with ttl.
func (f *File) expiry(ttl time.Duration) int64 {
	d := resolveTTL(ttl, f.def)
	if d == 0 {
		return 0
	}
	now := f.now().UnixNano()
	if d > time.Duration(1<<63-1-now) {
		return 0 // beyond 2262: never
	}
	return now + int64(d)
}

// lookup is the state of an entry file.
type lookup int

const (
	found lookup = iota
	missing
	stale // expired or corrupt: a miss whose file should go
)

// read returns the value of key and its expiry.
func (f *File) read(path, key string) ([]byte, int64, lookup, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, missing, nil
	}
	if err != nil {
		return nil, 0, missing, fmt.Errorf("stores: file: %w", err)
	}
	val, exp, err := decodeFileEntry(b, key)
	if err != nil || f.expired(exp) {
		return nil, 0, stale, nil
	}
	return val, exp, found, nil
}

// writeTemp writes data to a new temporary file in the namespace directory.
func (f *File) writeTemp(data []byte) (string, error) {
	tmp, err := os.CreateTemp(f.ns, fileTempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		// Someone removed the directory under us; make it again.
		if err = os.MkdirAll(f.ns, 0o700); err == nil {
			tmp, err = os.CreateTemp(f.ns, fileTempPrefix+"*")
		}
	}
	if err != nil {
		return "", fmt.Errorf("stores: file: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("stores: file: %w", err)
	}
	return tmp.Name(), nil
}

// install renames a temporary file into place.
func (f *File) install(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("stores: file: %w", err)
	}
	return nil
}

// Get returns the value under key, or ErrNotFound.
func (f *File) Get(ctx context.Context, key string) ([]byte, error) {
	val, _, err := f.get(ctx, key)
	return val, err
}

// get returns the value under key and its expiry (Unix ns, 0 = never), or
// ErrNotFound; it removes the file of an expired or corrupt entry.
func (f *File) get(ctx context.Context, key string) ([]byte, int64, error) {
	if err := f.check(ctx); err != nil {
		return nil, 0, err
	}
	h := keyHash(key)
	path := f.path(h)
	val, exp, st, err := f.read(path, key)
	switch {
	case err != nil:
		return nil, 0, err
	case st == stale:
		f.removeStale(ctx, h, path, key)
		return nil, 0, ErrNotFound
	case st == missing:
		return nil, 0, ErrNotFound
	}
	return val, exp, nil
}

// Set stores value under key.
func (f *File) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	return f.set(ctx, key, value, ttl)
}

// set writes an entry. When the write fails (a full disk, a file size
// limit, a lock it could not take), the key's previous file is removed:
// the key must not keep the value the write was meant to replace (see
// Failed writes in the package doc).
func (f *File) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	h := keyHash(key)
	path := f.path(h)
	tmp, err := f.writeTemp(encodeFileEntry(key, value, f.expiry(ttl)))
	if err != nil {
		return f.drop(err, path)
	}
	unlock, err := f.lock(ctx, h)
	if err != nil {
		_ = os.Remove(tmp)
		return f.drop(err, path)
	}
	defer unlock()
	if err := f.installEntry(ctx, tmp, path); err != nil {
		return f.drop(err, path)
	}
	return nil
}

// drop removes the entry file at path after a write of it failed with err,
// and returns err. It takes no lock: removing a path is atomic, and what a
// concurrent writer installs afterwards is a new value, which may stay.
func (f *File) drop(err error, path string) error {
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("%w; removing the previous value: %v", err, rerr)
	}
	return err
}

// Add stores value under key if the key is absent or expired, atomically
// across the processes that share the directory.
func (f *File) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := f.check(ctx); err != nil {
		return false, err
	}
	h := keyHash(key)
	path := f.path(h)
	unlock, err := f.lock(ctx, h)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, _, st, err := f.read(path, key); err != nil || st == found {
		return false, err
	}
	tmp, err := f.writeTemp(encodeFileEntry(key, value, f.expiry(ttl)))
	if err != nil {
		return false, err
	}
	if err := f.installEntry(ctx, tmp, path); err != nil {
		return false, err
	}
	return true, nil
}

// Delete removes key.
func (f *File) Delete(ctx context.Context, key string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	return f.delete(ctx, key)
}

func (f *File) delete(ctx context.Context, key string) error {
	h := keyHash(key)
	unlock, err := f.lock(ctx, h)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(f.path(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stores: file: %w", err)
	}
	return nil
}

// GetMany returns the values of the keys that are present.
func (f *File) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := f.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// SetMany stores every item. It stops at the first error: the items
// written before it stay written, and the keys not written lose their
// previous values.
func (f *File) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	done := make(map[string]bool, len(items))
	for k, v := range items {
		err := ctx.Err()
		if err == nil {
			if err = f.set(ctx, k, v, ttl); err == nil {
				done[k] = true
				continue
			}
		}
		for k := range items {
			if !done[k] {
				err = f.drop(err, f.path(keyHash(k)))
			}
		}
		return err
	}
	return nil
}

// DeleteMany removes every key.
func (f *File) DeleteMany(ctx context.Context, keys []string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// Incr adds delta to the decimal integer under key, atomically across the
// processes that share the directory, keeping the entry's expiry. An absent
// key is created holding delta, with no expiry.
func (f *File) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	if err := f.check(ctx); err != nil {
		return 0, err
	}
	h := keyHash(key)
	path := f.path(h)
	unlock, err := f.lock(ctx, h)
	if err != nil {
		return 0, err
	}
	defer unlock()
	val, exp, st, err := f.read(path, key)
	if err != nil {
		return 0, err
	}
	n := delta
	if st == found {
		if n, err = addCounter(val, delta); err != nil {
			return 0, fmt.Errorf("stores: file: incr %q: %w", key, err)
		}
	} else {
		exp = 0
	}
	tmp, err := f.writeTemp(encodeFileEntry(key, strconv.AppendInt(nil, n, 10), exp))
	if err != nil {
		return 0, err
	}
	if err := f.installEntry(ctx, tmp, path); err != nil {
		return 0, err
	}
	return n, nil
}

// Clear removes every entry of this store's namespace. Entries written by
// other processes while it runs may survive.
func (f *File) Clear(ctx context.Context) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	des, err := os.ReadDir(f.ns)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stores: file: %w", err)
	}
	for i, de := range des {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if isEntryName(de.Name()) {
			if err := os.Remove(filepath.Join(f.ns, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("stores: file: %w", err)
			}
		}
	}
	f.forgetCount(ctx) // rescan at the next new entry
	return nil
}

// Close makes later calls fail with ErrClosed. It leaves the files in place
// and is safe to call twice.
func (f *File) Close() error {
	f.closed.Store(true)
	return nil
}
