package stores

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The bounds of numeric URL parameters. A URL that gives a number asks for
// that number: a value the store or its client library would turn into
// something else (a zero read as "the default", a negative read as "none",
// a count past what go-redis holds in an int32, which makes it panic) is
// refused with an error naming the parameter. Leaving a parameter out
// gives its default.

// Bounds past which a client library breaks or a value cannot be meant.
const (
	// maxConns bounds the connection counts per server (pool_size,
	// min_idle_conns, max_idle_conns, max_active_conns,
	// max_concurrent_dials, pipeline_pool_size; memcached's
	// max_idle_conns): redis's default maxclients, 10,000. go-redis
	// allocates a slot per connection up front, for every node (a pool of
	// a billion takes gigabytes before the first call), and panics past
	// an int32.
	maxConns = 10000
	// maxRedisBuffer bounds go-redis's pipeline buffer sizes, allocated
	// per connection: 64 MiB.
	maxRedisBuffer = 64 << 20
	// maxRedisTimeout bounds the timeouts handed to go-redis (dial, read,
	// write, pool, dialer retry): an hour, past which a call that waits is
	// a hung app, not a slow network.
	maxRedisTimeout = time.Hour
	// maxRedisBackoff bounds go-redis's pauses between retries: a minute.
	maxRedisBackoff = time.Minute
	// maxRedisConnAge bounds the connection ages and idle times handed to
	// go-redis: a day.
	maxRedisConnAge = 24 * time.Hour
)

// positiveDuration returns the value of name, which must be above zero, or
// def when absent.
func (p *Params) positiveDuration(name string, def time.Duration) time.Duration {
	v, given := p.q[name]
	d := p.Duration(name, def)
	if given && d == 0 && p.err == nil {
		p.fail(name, v[0], "a duration above zero such as 500ms or 2s (leave the parameter out for the default)")
	}
	return d
}

// durationIn returns the value of name, which must be above zero and at
// most hi, or def when absent.
func (p *Params) durationIn(name string, def, hi time.Duration) time.Duration {
	v, given := p.q[name]
	d := p.positiveDuration(name, def)
	if given && p.err == nil && d > hi {
		p.fail(name, v[0], "a duration above zero of at most "+hi.String())
		return def
	}
	return d
}

// intIn returns the value of name, which must be in [lo, hi], or def when
// absent.
func (p *Params) intIn(name string, def, lo, hi int) int {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// bytesIn returns the value of name, a size (see [Params.Bytes]) in [lo,
// hi], or def when absent.
func (p *Params) bytesIn(name string, def, lo, hi int64) int64 {
	v, given := p.q[name]
	n := p.Bytes(name, def)
	if given && p.err == nil && (n < lo || n > hi) {
		p.fail(name, v[0], fmt.Sprintf("a size from %d to %d bytes", lo, hi))
		return def
	}
	return n
}

// goRedisInt is the range of an integer parameter the cluster and
// sentinel forms hand to go-redis: lo is 1 where go-redis reads 0 as its
// default; none says what -1 means to go-redis, allowed besides [lo, hi]
// ("" when -1 is refused).
type goRedisInt struct {
	lo, hi int
	none   string
}

// goRedisInts are the integer parameters of go-redis's cluster and
// failover URL parsing (redis.ParseClusterURL, redis.ParseFailoverURL).
var goRedisInts = map[string]goRedisInt{
	"protocol":                   {lo: 2, hi: 3},
	"max_redirects":              {lo: 1, hi: 1000, none: "no redirects followed"},
	"max_retries":                {lo: 1, hi: 1000, none: "no retries"},
	"dialer_retries":             {lo: 1, hi: 1000},
	"max_concurrent_dials":       {lo: 1, hi: maxConns},
	"min_idle_conns":             {lo: 0, hi: maxConns},
	"max_idle_conns":             {lo: 0, hi: maxConns},
	"max_active_conns":           {lo: 0, hi: maxConns},
	"pipeline_pool_size":         {lo: 1, hi: maxConns, none: "no pipeline pool"},
	"pipeline_read_buffer_size":  {lo: 1, hi: maxRedisBuffer},
	"pipeline_write_buffer_size": {lo: 1, hi: maxRedisBuffer},
	"failing_timeout_seconds":    {lo: 1, hi: 86400},
}

// goRedisDuration is the range of a duration parameter the cluster and
// sentinel forms hand to go-redis: noZero refuses 0, which go-redis reads
// (as any value below it) as -1, "disabled", and which for some leaves
// nothing sensible (a pool that never waits, dial retries without pause);
// max is the longest accepted.
type goRedisDuration struct {
	noZero bool
	max    time.Duration
}

// goRedisDurations are the duration parameters of go-redis's cluster and
// failover URL parsing.
var goRedisDurations = map[string]goRedisDuration{
	"min_retry_backoff":        {max: maxRedisBackoff},
	"max_retry_backoff":        {max: maxRedisBackoff},
	"dialer_retry_timeout":     {noZero: true, max: maxRedisTimeout},
	"pool_timeout":             {noZero: true, max: maxRedisTimeout},
	"conn_max_lifetime":        {max: maxRedisConnAge},
	"conn_max_lifetime_jitter": {max: maxRedisConnAge},
	"conn_max_idle_time":       {max: maxRedisConnAge},
	"idle_timeout":             {max: maxRedisConnAge},
	"max_conn_age":             {max: maxRedisConnAge},
}

// checkGoRedisNumbers checks the numeric parameters in rest, which the
// cluster and sentinel forms hand to go-redis, against goRedisInts and
// goRedisDurations.
func checkGoRedisNumbers(scheme string, rest map[string][]string) error {
	names := make([]string, 0, len(rest))
	for name := range rest {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if len(rest[name]) == 0 {
			continue
		}
		v := rest[name][0]
		if r, ok := goRedisInts[name]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err == nil && n == -1 && r.none != "":
			case err == nil && n >= r.lo && n <= r.hi:
			default:
				want := fmt.Sprintf("an integer from %d to %d", r.lo, r.hi)
				if r.none != "" {
					want += fmt.Sprintf(", or -1 for %s", r.none)
				}
				return fmt.Errorf("stores: %s URL: parameter %s=%q: want %s (leave it out for go-redis's default)", scheme, name, v, want)
			}
			continue
		}
		if r, ok := goRedisDurations[name]; ok {
			p := &Params{scheme: scheme, q: map[string][]string{name: {v}}, used: map[string]bool{}}
			d := p.Duration(name, 0)
			switch {
			case p.err != nil:
			case r.noZero && d == 0:
				p.fail(name, v, "a duration above zero such as 100ms (leave it out for go-redis's default)")
			case d > r.max:
				p.fail(name, v, "a duration of at most "+r.max.String()+" (leave it out for go-redis's default)")
			}
			if p.err != nil {
				return p.err
			}
		}
	}
	return nil
}
