package stores

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The entry count of a namespace: a File store with MaxEntries keeps the
// number of entry files of its namespace in the file fileCountName, under
// that file's lock (flock, shared by the processes that use the
// directory, and a mutex in each). Every rename that installs an entry
// file is made under the lock: one that creates a file adds one to the
// count, and when the count would pass MaxEntries the namespace is pruned
// first, to nine tenths of MaxEntries (expired entries, then the oldest),
// and the count set to what is left. Removals (Delete, expired or corrupt
// entries, failed writes, Clear) are not counted, so the count is never
// below the number of files: however many goroutines and processes
// write, the namespace never holds more than MaxEntries entries. A count
// file that is missing or unreadable (a new namespace, a directory
// removed under the store) is rebuilt by a scan.
//
// Where there is no flock (crossProcessLocks is false), the bound holds
// within one process only: processes sharing a directory can lose each
// other's counts.

// fileCountName is the name of the count file in the namespace directory.
const fileCountName = "entries"

// unknownCount is the stored count that asks for a scan.
const unknownCount = -1

// installEntry renames the temporary file tmp into place at path, and
// keeps the entry count: under the count lock, pruning first when the
// entry is new and the namespace is full. The caller holds the key's lock.
func (f *File) installEntry(ctx context.Context, tmp, path string) error {
	if f.max <= 0 {
		return f.install(tmp, path)
	}
	f.countMu.Lock()
	defer f.countMu.Unlock()
	fh, err := f.openLocked(ctx, fileCountName)
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	defer fh.Close()
	n := readCount(fh)
	_, serr := os.Lstat(path)
	creates := serr != nil // absent, or unknown: counted as new
	if creates && (n == unknownCount || n >= int64(f.max)) {
		n = f.prune(ctx)
	}
	if err := f.install(tmp, path); err != nil {
		return err
	}
	if creates && n != unknownCount {
		n++
	}
	writeCount(fh, n)
	return nil
}

// forgetCount marks the count unknown, so that the next new entry scans
// the namespace (after Clear, whose removals the count does not follow).
func (f *File) forgetCount(ctx context.Context) {
	if f.max <= 0 {
		return
	}
	f.countMu.Lock()
	defer f.countMu.Unlock()
	if fh, err := f.openLocked(ctx, fileCountName); err == nil {
		writeCount(fh, unknownCount)
		fh.Close()
	}
}

// readCount returns the count stored in fh, or unknownCount.
func readCount(fh *os.File) int64 {
	var b [8]byte
	if _, err := fh.ReadAt(b[:], 0); err != nil {
		return unknownCount
	}
	if n := int64(binary.LittleEndian.Uint64(b[:])); n >= 0 {
		return n
	}
	return unknownCount
}

// writeCount stores n in fh. A write that fails leaves a count that is
// too high or unreadable: pruning comes sooner, never later.
func writeCount(fh *os.File, n int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	if _, err := fh.WriteAt(b[:], 0); err != nil {
		_ = fh.Truncate(0) // unreadable: the next new entry scans
	}
}

// prune scans the namespace and, when it holds MaxEntries entries or more,
// removes expired entries, then the oldest, down to nine tenths of
// MaxEntries, leaving room for the entry about to be installed. It returns
// the number of entries left (those it failed to remove included), or
// unknownCount when the directory cannot be read. The caller holds the
// count lock.
func (f *File) prune(ctx context.Context) int64 {
	f.scans.Add(1)
	des, err := os.ReadDir(f.ns)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0 // removed under us: empty (writeTemp makes it again)
		}
		return unknownCount
	}
	type candidate struct {
		path    string
		de      fs.DirEntry
		modTime time.Time
	}
	var files []candidate
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(f.ns, name)
		switch {
		case isEntryName(name):
			files = append(files, candidate{path: path, de: de})
		case strings.HasPrefix(name, fileTempPrefix):
			if info, err := de.Info(); err == nil && f.now().Sub(info.ModTime()) > fileStaleTemp {
				_ = os.Remove(path)
			}
		}
	}
	if len(files) < f.max {
		return int64(len(files))
	}
	low := f.max - max(1, f.max/10)
	// Expired entries first.
	kept := files[:0]
	for _, c := range files {
		if ctx.Err() == nil && f.fileExpired(c.path) && removed(c.path) {
			continue
		}
		kept = append(kept, c)
	}
	files = kept
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
		left := len(files)
		for _, c := range files {
			if left <= low {
				break
			}
			if removed(c.path) {
				left--
			}
		}
		return int64(left)
	}
	return int64(len(files))
}

// removed removes the file at path and reports whether it is gone.
func removed(path string) bool {
	err := os.Remove(path)
	return err == nil || errors.Is(err, fs.ErrNotExist)
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
