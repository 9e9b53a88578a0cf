package stores

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

func init() {
	Register("file", openFile)
}

func openFile(_ context.Context, u *url.URL) (Store, error) {
	cfg, err := parseFileURL(u)
	if err != nil {
		return nil, err
	}
	return NewFile(cfg)
}

// parseFileURL reads a file URL into the store's config without touching
// the file system (NewFile creates the directory):
//
//	file:///abs/dir?prefix=app:&max_entries=500&default_ttl=5m
func parseFileURL(u *url.URL) (FileConfig, error) {
	dir, err := fileURLDir(u)
	if err != nil {
		return FileConfig{}, err
	}
	p := NewParams(u)
	cfg := FileConfig{
		Dir:        dir,
		MaxEntries: p.Int("max_entries", DefaultFileMaxEntries),
		DefaultTTL: p.Duration("default_ttl", 0),
		Prefix:     p.String("prefix", ""),
	}
	if err := p.Err(); err != nil {
		return FileConfig{}, err
	}
	if cfg.MaxEntries == 0 { // max_entries=0 in a URL turns pruning off
		cfg.MaxEntries = -1
	}
	return cfg, nil
}

// fileURLDir returns the directory of a file URL:
//
//	file:///abs/dir           absolute (also file://localhost/abs/dir)
//	file:relative/dir         relative to the working directory
//	file://./relative/dir     the same
func fileURLDir(u *url.URL) (string, error) {
	if u.User != nil {
		return "", errors.New("stores: file URL takes no user or password")
	}
	var dir string
	switch {
	case u.Opaque != "":
		d, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return "", fmt.Errorf("stores: file URL: malformed path: %v", err)
		}
		dir = d
	case u.Host == "." || u.Host == "..":
		dir = u.Host + u.Path
	case u.Host == "" || u.Host == "localhost":
		dir = u.Path
	default:
		return "", fmt.Errorf("stores: file URL names host %q; want file:///abs/dir or file:relative/dir", u.Host)
	}
	if dir == "" {
		return "", errors.New("stores: file URL has no directory; want file:///abs/dir or file:relative/dir")
	}
	if strings.ContainsRune(dir, 0) {
		return "", errors.New("stores: file URL: directory contains a NUL byte")
	}
	return filepath.FromSlash(dir), nil
}
