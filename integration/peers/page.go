package peers

import (
	"bytes"
	"sync/atomic"
)

// The one page every system serves: the same bytes, the same type.

// PagePath is the route every system serves (and caches), RunsPath the
// uncached route that answers how many times the page was built.
const (
	PagePath    = "/page"
	RunsPath    = "/handler-runs"
	contentType = "text/plain; charset=utf-8"
)

// Page returns size bytes of text, the same for every call with one size.
func Page(size int) []byte {
	const unit = "echocache page body 0123456789\n"
	return bytes.Repeat([]byte(unit), size/len(unit)+1)[:size]
}

// origin is the handler behind every system: it counts how often the page
// is built. A cache in front of it should build the page once.
type origin struct {
	body []byte
	runs atomic.Int64
}

// build is one run of the handler: it returns the page.
func (o *origin) build() []byte {
	o.runs.Add(1)
	return o.body
}

// Sizes are the page sizes the benchmark measures: 2 KiB and 64 KiB.
var Sizes = []int{2 << 10, 64 << 10}
