package stores

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// lock takes the lock of the key whose hash is h: a mutex in this process
// and, where the system has flock, a lock file shared with other processes
// (one of fileLockStripes).
func (f *File) lock(ctx context.Context, h [sha256.Size]byte) (unlock func(), err error) {
	stripe := int(h[0]) % fileLockStripes
	mu := &f.locks[stripe]
	mu.Lock()
	fh, err := f.openLocked(ctx, fmt.Sprintf("lock-%02x", stripe))
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { fh.Close(); mu.Unlock() }, nil
}

// openLocked opens the file name of the namespace directory with its
// cross-process lock held (close it to release the lock), recreating the
// directory when someone removed it.
func (f *File) openLocked(ctx context.Context, name string) (*os.File, error) {
	path := filepath.Join(f.ns, name)
	fh, err := openLocked(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		// Someone removed the directory under us; make it again.
		if err = os.MkdirAll(f.ns, 0o700); err == nil {
			fh, err = openLocked(ctx, path)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("stores: file: lock: %w", err)
	}
	return fh, nil
}

// removeStale removes the file of key if it is still expired or corrupt once
// the key is locked: another process may have just replaced it.
func (f *File) removeStale(ctx context.Context, h [sha256.Size]byte, path, key string) {
	unlock, err := f.lock(ctx, h)
	if err != nil {
		return
	}
	defer unlock()
	if _, _, st, err := f.read(path, key); err == nil && st == stale {
		_ = os.Remove(path)
	}
}
