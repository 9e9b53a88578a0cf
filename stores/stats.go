package stores

// StatsReporter is implemented by stores that count what they hold: the
// in-process stores, whose fill and evictions are the process's own (a
// server's are in its own statistics: redis INFO, memcached stats).
// echocache.Cache.Stats and the Prometheus collector read it.
type StatsReporter interface {
	Stats() StoreStats
}

// StoreStats is what a store holds, at one moment.
type StoreStats struct {
	// Entries is the number of entries held, expired ones not yet removed
	// included.
	Entries int64
	// Bytes is the size the entries count for against MaxBytes: keys,
	// values and a fixed overhead per entry (see MemoryConfig.MaxBytes).
	Bytes int64
	// MaxBytes is the bound on Bytes; 0 means none.
	MaxBytes int64
	// Evictions counts the entries dropped to make room for others since
	// the store was opened; not expirations, deletions or overwrites.
	Evictions uint64
}
