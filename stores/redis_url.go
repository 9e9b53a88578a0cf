package stores

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The URL forms of the redis store:
//
//	redis://[user:pass@]host[:port][/db]?prefix=app:
//	rediss://...                                        (TLS)
//	redis+cluster://[user:pass@]host:port[,host:port...][/]?prefix=app:
//	rediss+cluster://...                                (TLS)
//	redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER[/db]?prefix=app:
//	rediss+sentinel://...                               (TLS)
//
// Every form reads prefix, default_ttl, max_value_size, dial_timeout,
// read_timeout, write_timeout (each at most 1h), pool_size and, for the
// TLS forms (rediss...), skip_verify (true: TLS without verifying the
// server's certificate; refused without TLS) itself, with one meaning
// everywhere. The cluster and sentinel forms hand their other parameters
// to go-redis's own URL parsing (redis.ParseClusterURL,
// redis.ParseFailoverURL), which names any it does not know, except those
// that would read from replicas, which are refused.
func init() {
	Register("redis", openRedis)
	Register("rediss", openRedis)
	Register("redis+cluster", openRedisCluster)
	Register("rediss+cluster", openRedisCluster)
	Register("redis+sentinel", openRedisSentinel)
	Register("rediss+sentinel", openRedisSentinel)
}

// openRedis opens redis:// and rediss:// URLs:
//
//	redis://[user:pass@]host[:port][/db]?prefix=app:&default_ttl=5m
//
// Parameters: prefix, default_ttl, dial_timeout, read_timeout,
// write_timeout, pool_size, max_value_size (RedisConfig.MaxValueSize),
// skip_verify (rediss:// only). rediss:// connects with TLS, verifying the
// server's certificate against host unless skip_verify=true.
func openRedis(_ context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	if err := checkRedisURLShape(u, scheme, "host:port/db"); err != nil {
		return nil, err
	}
	if strings.Contains(u.Host, ",") {
		return nil, fmt.Errorf("stores: %s URL: host %q lists several servers; %s:// takes one: for a Redis Cluster use %s+cluster://host:port,host:port/, for Sentinel %s+sentinel://host:port,host:port/MASTER_NAME",
			scheme, u.Host, scheme, scheme, scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "6379"
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("stores: %s URL: bad port %q", scheme, port)
	}
	opts := &redis.UniversalOptions{Addrs: []string{net.JoinHostPort(host, port)}}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	switch db := strings.TrimPrefix(u.Path, "/"); {
	case db == "":
	default:
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("stores: %s URL: path %q: want a database number such as /0", scheme, u.Path)
		}
		opts.DB = n
	}
	p := NewParams(u)
	rp := readRedisParams(p)
	if scheme == "rediss" {
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: rp.skipVerify} //nolint:gosec // only when the URL asks (skip_verify)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolSize = rp.dial, rp.read, rp.write, rp.poolSize
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := rp.check(scheme); err != nil {
		return nil, err
	}
	rp.cfg.Options = opts
	return NewRedis(rp.cfg)
}

// redisParams are the parameters every redis URL form reads itself.
type redisParams struct {
	cfg               RedisConfig // Prefix, DefaultTTL, MaxValueSize
	hasPrefix         bool
	dial, read, write time.Duration
	poolSize          int
	skipVerify        bool // skip_verify: TLS without checking the certificate
	hasSkipVerify     bool
}

func readRedisParams(p *Params) redisParams {
	var rp redisParams
	rp.cfg.Prefix, rp.hasPrefix = p.lookup("prefix")
	rp.cfg.DefaultTTL = p.Duration("default_ttl", 0)
	rp.cfg.MaxValueSize = p.bytesIn("max_value_size", 0, 1, math.MaxInt64)
	rp.dial = p.durationIn("dial_timeout", 0, maxRedisTimeout)
	rp.read = p.durationIn("read_timeout", 0, maxRedisTimeout)
	rp.write = p.durationIn("write_timeout", 0, maxRedisTimeout)
	rp.poolSize = p.intIn("pool_size", 0, 1, maxConns)
	_, rp.hasSkipVerify = p.q["skip_verify"]
	rp.skipVerify = p.Bool("skip_verify", false)
	return rp
}

func (rp redisParams) check(scheme string) error {
	if rp.hasPrefix && rp.cfg.Prefix == "" {
		return fmt.Errorf("stores: %s URL: parameter prefix is empty: Clear needs a namespace", scheme)
	}
	if rp.hasSkipVerify && !strings.HasPrefix(scheme, "rediss") {
		return fmt.Errorf("stores: %s URL: parameter skip_verify is for TLS: use rediss%s://", scheme, strings.TrimPrefix(scheme, "redis"))
	}
	return nil
}

// checkRedisURLShape refuses an opaque URL and a fragment.
func checkRedisURLShape(u *url.URL, scheme, form string) error {
	if u.Opaque != "" {
		return fmt.Errorf("stores: %s URL: want %s://%s, got an opaque URL", scheme, scheme, form)
	}
	if u.Fragment != "" {
		return fmt.Errorf("stores: %s URL: unexpected fragment #%s", scheme, u.Fragment)
	}
	return nil
}

// replicaReads are the go-redis parameters that send reads to replicas,
// refused by the cluster and sentinel forms, with the reason.
var replicaReads = func() map[string]string {
	const why = "it reads from replicas, which lag their master: a read right after the store's own write could return the previous value"
	m := map[string]string{}
	for _, name := range []string{"read_only", "route_by_latency", "route_by_latency_tolerance", "route_randomly", "replica_only", "use_disconnected_replicas"} {
		m[name] = why
	}
	return m
}()

// openRedisCluster opens redis+cluster:// and rediss+cluster:// URLs:
//
//	redis+cluster://[user:pass@]host:port[,host:port...][/]?prefix=app:
//
// The addresses are seeds: the client learns the cluster's masters and
// replicas from any of them that answers, so one may be down. More seeds,
// IPv6 ones included, can be given as repeated addr=host:port parameters
// (Go's URL parser accepts an IPv6 literal only as the URL's one host).
// Parameters: those of openRedis, and go-redis's cluster parameters
// (max_redirects, min_retry_backoff, pool_timeout, ...), except read_only,
// route_by_latency, route_by_latency_tolerance and route_randomly, which
// would read from replicas. rediss+cluster:// connects to every node with
// TLS, verifying each node's certificate against the address it is
// reached at (unless skip_verify=true).
func openRedisCluster(_ context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	if err := checkRedisURLShape(u, scheme, "host:port,host:port/"); err != nil {
		return nil, err
	}
	seeds, err := redisSeeds(u, scheme)
	if err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("stores: %s URL: path %q: a cluster has only database 0; want nothing after the addresses", scheme, u.Path)
	}
	p := NewParams(u)
	rp := readRedisParams(p)
	seeds = append(seeds, p.addrs("addr")...)
	rest := p.forward(replicaReads, map[string]string{"db": "a cluster has only database 0"})
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := checkGoRedisNumbers(scheme, rest); err != nil {
		return nil, err
	}
	if err := rp.check(scheme); err != nil {
		return nil, err
	}
	for _, s := range seeds[1:] {
		rest.Add("addr", s)
	}
	co, err := redis.ParseClusterURL((&url.URL{Scheme: "redis", Host: seeds[0], Path: "/", RawQuery: rest.Encode()}).String())
	if err != nil {
		return nil, goRedisURLError(scheme, err)
	}
	if u.User != nil {
		co.Username = u.User.Username()
		co.Password, _ = u.User.Password()
	}
	co.TLSConfig = redisTLS(scheme, rp.skipVerify)
	co.DialTimeout, co.ReadTimeout, co.WriteTimeout, co.PoolSize = rp.dial, rp.read, rp.write, rp.poolSize
	applyClusterDefaults(co)
	return newRedisStore(rp.cfg, redis.NewClusterClient(co), true)
}

// openRedisSentinel opens redis+sentinel:// and rediss+sentinel:// URLs:
//
//	redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER[/db]?prefix=app:
//
// The addresses are the sentinels' (more as repeated addr=host:port
// parameters); MASTER is the name they know the master by; user:pass are
// the credentials of the master (and of its replicas). Sentinels that
// want credentials of their own get them from sentinel_username and
// sentinel_password; without those, no AUTH is sent to sentinels (Redis 6
// and later refuse AUTH on a server without a password, and sentinels
// often have none). Parameters: those of openRedis, sentinel_username,
// sentinel_password, and go-redis's failover parameters (pool_timeout,
// min_retry_backoff, ...), except
// replica_only, use_disconnected_replicas, route_by_latency,
// route_by_latency_tolerance and route_randomly, which would read from
// replicas, and master_name, username, password and db, which the URL
// gives in its path and userinfo. The client always talks to the master.
// rediss+sentinel:// connects to sentinels and servers with TLS,
// verifying each certificate against the address it is reached at.
func openRedisSentinel(_ context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	const form = "host:port,host:port/MASTER_NAME[/db]"
	if err := checkRedisURLShape(u, scheme, form); err != nil {
		return nil, err
	}
	seeds, err := redisSeeds(u, scheme)
	if err != nil {
		return nil, err
	}
	master, db, err := sentinelPath(u.Path)
	if err != nil {
		return nil, fmt.Errorf("stores: %s URL: path %q: %v; want %s://%s", scheme, u.Path, err, scheme, form)
	}
	p := NewParams(u)
	rp := readRedisParams(p)
	seeds = append(seeds, p.addrs("addr")...)
	sentinelUser := p.String("sentinel_username", "")
	sentinelPass, hasSentinelPass := p.lookup("sentinel_password") // never in an error: not read by a parser that prints values
	rest := p.forward(replicaReads, map[string]string{
		"master_name": "the master's name is the URL's path: /MASTER_NAME",
		"db":          "the database is the URL's path: /MASTER_NAME/DB",
		"username":    "the master's credentials are the URL's user:pass@",
		"password":    "the master's credentials are the URL's user:pass@",
	})
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := checkGoRedisNumbers(scheme, rest); err != nil {
		return nil, err
	}
	if err := rp.check(scheme); err != nil {
		return nil, err
	}
	if sentinelUser != "" && !hasSentinelPass {
		return nil, fmt.Errorf("stores: %s URL: parameter sentinel_username without sentinel_password", scheme)
	}
	for _, s := range seeds[1:] {
		rest.Add("addr", s)
	}
	rest.Set("master_name", master)
	fo, err := redis.ParseFailoverURL((&url.URL{Scheme: "redis", Host: seeds[0], Path: "/" + strconv.Itoa(db), RawQuery: rest.Encode()}).String())
	if err != nil {
		return nil, goRedisURLError(scheme, err)
	}
	fo.SentinelUsername, fo.SentinelPassword = sentinelUser, sentinelPass
	if u.User != nil {
		fo.Username = u.User.Username()
		fo.Password, _ = u.User.Password()
	}
	fo.TLSConfig = redisTLS(scheme, rp.skipVerify)
	fo.DialTimeout, fo.ReadTimeout, fo.WriteTimeout, fo.PoolSize = rp.dial, rp.read, rp.write, rp.poolSize
	applyFailoverDefaults(fo)
	r, err := newRedisStore(rp.cfg, redis.NewFailoverClient(fo), true)
	if err != nil {
		return nil, err
	}
	r.setSentinel(fo)
	return r, nil
}

// redisTLS returns the TLS config of a multi-server scheme: nil without
// TLS; otherwise TLS 1.2 or later with no fixed ServerName, so that each
// node's certificate is verified against the host it is dialled at
// (go-redis's URL parsers would name the first address for every node).
func redisTLS(scheme string, skipVerify bool) *tls.Config {
	if !strings.HasPrefix(scheme, "rediss+") {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify} //nolint:gosec // only when the URL asks (skip_verify)
}

// redisSeeds splits the URL's host into its host:port addresses; each must
// have a host and a port.
func redisSeeds(u *url.URL, scheme string) ([]string, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("stores: %s URL: no address; want host:port[,host:port...]", scheme)
	}
	var seeds []string
	for _, a := range strings.Split(u.Host, ",") {
		if err := checkHostPort(a); err != nil {
			return nil, fmt.Errorf("stores: %s URL: address %q: %v", scheme, a, err)
		}
		seeds = append(seeds, a)
	}
	return seeds, nil
}

// checkHostPort checks that a is host:port with a port in 1..65535.
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// sentinelPath parses the path of a sentinel URL, /MASTER[/db].
func sentinelPath(path string) (master string, db int, err error) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if parts[0] == "" {
		return "", 0, errors.New("no master name")
	}
	switch len(parts) {
	case 1:
		return parts[0], 0, nil
	case 2:
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 || parts[1] != strconv.Itoa(db) {
			return "", 0, fmt.Errorf("database %q is not a number", parts[1])
		}
		return parts[0], db, nil
	}
	return "", 0, errors.New("too many segments")
}

// addrs returns the values of the repeatable parameter name, each checked
// to be host:port.
func (p *Params) addrs(name string) []string {
	p.used[name] = true
	var out []string
	for _, a := range p.q[name] {
		if err := checkHostPort(a); err != nil {
			p.fail(name, a, "host:port")
			return nil
		}
		out = append(out, a)
	}
	return out
}

// forward returns the parameters that nobody has read, and marks them
// read, for a store that hands them to a library's own URL parser. A name
// in one of the refuse maps, or one given more than once, is an error (the
// map gives the reason).
func (p *Params) forward(refuse ...map[string]string) url.Values {
	names := make([]string, 0, len(p.q))
	for name := range p.q {
		if !p.used[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := url.Values{}
	for _, name := range names {
		p.used[name] = true
		if why := refusal(name, refuse); why != "" {
			if p.err == nil {
				p.err = fmt.Errorf("stores: %s URL: parameter %s is not supported: %s", p.scheme, name, why)
			}
			continue
		}
		if vs := p.q[name]; len(vs) > 1 {
			if p.err == nil {
				p.err = fmt.Errorf("stores: %s URL: parameter %s given %d times", p.scheme, name, len(vs))
			}
			continue
		}
		out[name] = p.q[name]
	}
	return out
}

// refusal returns the reason for refusing name from the first map that
// has it, or "".
func refusal(name string, refuse []map[string]string) string {
	for _, m := range refuse {
		if why, ok := m[name]; ok {
			return why
		}
	}
	return ""
}

// goRedisURLError rewords an error of go-redis's URL parsing for scheme.
func goRedisURLError(scheme string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	if names, ok := strings.CutPrefix(msg, "unexpected option: "); ok {
		quoted := strings.Split(names, ", ")
		for i, n := range quoted {
			quoted[i] = strconv.Quote(n)
		}
		return fmt.Errorf("stores: %s URL: unknown parameter %s", scheme, strings.Join(quoted, ", "))
	}
	return fmt.Errorf("stores: %s URL: %s", scheme, msg)
}
