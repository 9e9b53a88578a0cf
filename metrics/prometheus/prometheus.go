// Package prometheus exports what an echocache.Cache does as Prometheus
// metrics (github.com/prometheus/client_golang). It is a package of its
// own so that a program that imports echocache without it does not link
// client_golang.
//
//	reg := prometheus.NewRegistry() // client_golang's
//	reg.MustRegister(echocacheprom.NewCollector(cache, echocacheprom.CollectorOpts{}))
//	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
//
// The metrics, all prefixed echocache_:
//
//	echocache_lookups_total{feature,result}          counter: each lookup once; feature is page, value,
//	                                                 memoize or fragment, result hit, miss, stale, bypass
//	                                                 or error; each lookup has one result, so a failed
//	                                                 lookup is "error", not "miss" (Stats.Misses
//	                                                 counts it in both: Misses = miss + error)
//	echocache_corrupt_entries_total                  counter: stored entries that did not open and were dropped
//	echocache_coalesced_total{feature}               counter: misses that waited for another caller's computation
//	echocache_bypasses_total{reason}                 counter: requests and results the cache left alone, by reason
//	echocache_stores_total                           counter: entries written
//	echocache_store_errors_total                     counter: store calls that failed or were skipped by the breaker
//	echocache_store_call_duration_seconds{result}    histogram: calls to a networked store; result ok or error
//	echocache_breaker_open                           gauge: 1 while the circuit breaker skips the store, else 0
//	echocache_store_entries, echocache_store_bytes,  gauges: what an in-process store (memory://) holds
//	echocache_store_max_bytes
//	echocache_store_evictions_total                  counter: entries it evicted to make room
//
// The counters are read from Cache.Stats at each scrape, so they agree
// with it; the histogram is fed by the Cache's observer hook
// (echocache.Observer), which NewCollector installs.
package prometheus

import (
	"context"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
)

// Namespace prefixes every metric name.
const Namespace = "echocache"

// DefaultBuckets are the bounds, in seconds, of the store-call latency
// histogram: 100 µs to 2.5 s, around the default store timeout (250 ms).
var DefaultBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// CollectorOpts configures a Collector. Its zero value is usable.
type CollectorOpts struct {
	// ConstLabels are added to every metric, to tell apart the
	// collectors of several caches registered in one registry (for
	// example prometheus.Labels{"cache": "pages"}).
	// Optional. Default value nil.
	ConstLabels prom.Labels

	// Buckets are the upper bounds, in seconds, of
	// echocache_store_call_duration_seconds.
	// Optional. Default value DefaultBuckets.
	Buckets []float64
}

// Collector is a prometheus.Collector of one Cache's metrics, and the
// echocache.Observer that times its store calls. It is safe for
// concurrent use.
type Collector struct {
	echocache.NopObserver
	cache *echocache.Cache

	lookups, corrupt, coalesced, bypasses *prom.Desc
	stores, storeErrors, breaker          *prom.Desc
	entries, bytes, maxBytes, evictions   *prom.Desc
	callDuration                          *prom.HistogramVec
}

// NewCollector returns the collector of cache's metrics and makes it an
// observer of cache, so that it times the store calls made from now on.
// Register it once (prometheus.Registerer.Register); a second collector of
// the same cache in one registry is refused as a duplicate.
func NewCollector(cache *echocache.Cache, opts CollectorOpts) *Collector {
	if cache == nil {
		panic("echocache/metrics/prometheus: NewCollector needs a Cache")
	}
	buckets := opts.Buckets
	if buckets == nil {
		buckets = DefaultBuckets
	}
	desc := func(name, help string, labels ...string) *prom.Desc {
		return prom.NewDesc(prom.BuildFQName(Namespace, "", name), help, labels, opts.ConstLabels)
	}
	c := &Collector{
		cache:       cache,
		lookups:     desc("lookups_total", "Lookups of the cache, by feature (page, value, memoize, fragment) and result (hit, miss, stale, bypass, error). Each lookup has one result: a lookup the store could not answer is error, not miss (echocache.Stats.Misses counts it as both, so Misses = miss + error).", "feature", "result"),
		corrupt:     desc("corrupt_entries_total", "Stored entries that did not open (damaged, forged, another format) and were dropped; each lookup was a miss."),
		coalesced:   desc("coalesced_total", "Misses that waited for another caller's handler, loader or render instead of running their own, by feature.", "feature"),
		bypasses:    desc("bypasses_total", "Requests that did not consult the cache and results that were not stored, by reason.", "reason"),
		stores:      desc("stores_total", "Entries written to the store."),
		storeErrors: desc("store_errors_total", "Store calls that failed or were skipped by the circuit breaker."),
		breaker:     desc("breaker_open", "1 while the circuit breaker skips the store, else 0."),
		entries:     desc("store_entries", "Entries an in-process store holds."),
		bytes:       desc("store_bytes", "Bytes an in-process store's entries count for against its bound."),
		maxBytes:    desc("store_max_bytes", "The bound on echocache_store_bytes."),
		evictions:   desc("store_evictions_total", "Entries an in-process store evicted to make room."),
		callDuration: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace:   Namespace,
			Name:        "store_call_duration_seconds",
			Help:        "Duration of calls to a networked store, the store timeout included, by result (ok: the store answered, a miss included; error).",
			ConstLabels: opts.ConstLabels,
			Buckets:     buckets,
		}, []string{"result"}),
	}
	(*core.Cache)(cache).AddObserver(c)
	return c
}

// StoreCall implements echocache.Observer: it observes the call's duration.
func (c *Collector) StoreCall(_ context.Context, ev echocache.StoreCallEvent) {
	result := "ok"
	if ev.Err != nil {
		result = "error"
	}
	c.callDuration.WithLabelValues(result).Observe(ev.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{c.lookups, c.corrupt, c.coalesced, c.bypasses, c.stores, c.storeErrors, c.breaker, c.entries, c.bytes, c.maxBytes, c.evictions} {
		ch <- d
	}
	c.callDuration.Describe(ch)
}

// Collect implements prometheus.Collector: a snapshot of Cache.Stats, and
// the histogram.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	st := c.cache.Stats()
	counter := func(d *prom.Desc, v uint64, labels ...string) {
		ch <- prom.MustNewConstMetric(d, prom.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prom.Desc, v float64) {
		ch <- prom.MustNewConstMetric(d, prom.GaugeValue, v)
	}
	for _, f := range core.Features {
		fs := st.Feature(f)
		for _, r := range core.Results {
			var v uint64
			switch r {
			case echocache.ResultHit:
				v = fs.Hits
			case echocache.ResultMiss:
				v = fs.Misses - fs.Errors // Stats counts a failed lookup as a miss too
			case echocache.ResultStale:
				v = fs.StaleHits
			case echocache.ResultBypass:
				v = fs.Bypasses
			case echocache.ResultError:
				v = fs.Errors
			}
			counter(c.lookups, v, f.String(), r.String())
		}
		counter(c.coalesced, fs.Coalesced, f.String())
	}
	for _, r := range st.BypassReasons() {
		counter(c.bypasses, st.Bypasses[r], string(r))
	}
	counter(c.corrupt, st.CorruptEntries)
	counter(c.stores, st.Stores)
	counter(c.storeErrors, st.StoreErrors)
	open := 0.0
	if st.BreakerOpen {
		open = 1
	}
	gauge(c.breaker, open)
	if s := st.Store; s != nil {
		gauge(c.entries, float64(s.Entries))
		gauge(c.bytes, float64(s.Bytes))
		gauge(c.maxBytes, float64(s.MaxBytes))
		counter(c.evictions, s.Evictions)
	}
	c.callDuration.Collect(ch)
}

var _ prom.Collector = (*Collector)(nil)
var _ echocache.Observer = (*Collector)(nil)
