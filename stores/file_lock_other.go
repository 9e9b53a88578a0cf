//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package stores

import (
	"context"
	"os"
)

// crossProcessLocks reports whether openLocked excludes other processes.
const crossProcessLocks = false

// openLocked opens the file at path, creating it if needed. There is no
// cross-process lock on this system: the File store's in-process mutexes
// are all there is, so processes sharing a directory can race on Add and
// Incr, and on the entry count.
func openLocked(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
