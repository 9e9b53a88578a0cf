package stores

import (
	"cmp"
	"context"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// wrote counts n writes that may have created files, the last at path, and
// prunes when they may have taken the namespace over MaxEntries.
func (f *File) wrote(ctx context.Context, n int, path string) {
	if f.max <= 0 || n == 0 || f.budget.Add(-int64(n)) > 0 {
		return
	}
	if !f.pruneMu.TryLock() {
		return // another goroutine is pruning
	}
	defer f.pruneMu.Unlock()
	_ = f.prune(ctx, path)
}

// prune scans the namespace and, when it holds more than nine tenths of
// MaxEntries, removes expired entries, then the oldest, down to nine tenths.
// It never removes the file at keep, the write that triggered it: file
// times are coarse (a few milliseconds on Linux), so the newest file can
// tie with older ones. It then sets the write budget to the room left
// below MaxEntries.
func (f *File) prune(ctx context.Context, keep string) error {
	f.scans.Add(1)
	des, err := os.ReadDir(f.ns)
	if err != nil {
		f.budget.Store(int64(f.max / 10))
		return err
	}
	type candidate struct {
		path    string
		de      fs.DirEntry
		modTime time.Time
	}
	var files []candidate
	protected := 0 // 1 when keep is among the entries
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(f.ns, name)
		switch {
		case path == keep:
			protected = 1
		case isEntryName(name):
			files = append(files, candidate{path: path, de: de})
		case strings.HasPrefix(name, fileTempPrefix):
			if info, err := de.Info(); err == nil && f.now().Sub(info.ModTime()) > fileStaleTemp {
				_ = os.Remove(path)
			}
		}
	}
	low := max(f.max-max(1, f.max/10), 1) - protected
	if len(files) > low {
		// Expired entries first.
		kept := files[:0]
		for _, c := range files {
			if ctx.Err() == nil && f.fileExpired(c.path) {
				_ = os.Remove(c.path)
				continue
			}
			kept = append(kept, c)
		}
		files = kept
	}
	if len(files) > low {
		// Then the oldest.
		for i := range files {
			if info, err := files[i].de.Info(); err == nil {
				files[i].modTime = info.ModTime()
			} // else removed meanwhile: first in line, which is harmless
		}
		slices.SortFunc(files, func(a, b candidate) int {
			return cmp.Or(a.modTime.Compare(b.modTime), strings.Compare(a.path, b.path))
		})
		for _, c := range files[:len(files)-low] {
			_ = os.Remove(c.path)
		}
		files = files[len(files)-low:]
	}
	f.budget.Store(int64(f.max - len(files) - protected))
	return nil
}

// fileExpired reads the expiry in the header of an entry file. A file too
// short to have one counts as expired.
func (f *File) fileExpired(path string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	var hdr [12]byte
	if _, err := io.ReadFull(fh, hdr[:]); err != nil || !isFileEntry(hdr[:]) {
		return true
	}
	return f.expired(int64(binary.LittleEndian.Uint64(hdr[4:])))
}
