// Package keyspace is the map of a cache's store namespace: every key the
// echocache packages write starts with one of the prefixes below, so that
// no feature can read another's entries, and a person looking at a store
// (redis-cli, memcached's lru_crawler) can tell what each key is.
//
// The store's own namespace (its prefix URL parameter) comes before all of
// them; [stores.Store.Clear] removes exactly that namespace.
//
//	v:<key>                      typed values, Function results (Get, Set, Incr...)
//	m:<name>:<version>:<arg>     Memoize results; <arg> is the argument's key
//	                             (internal/keyenc), <version> the token below
//	mv:<name>                    Memoize version tokens (ForgetAll replaces them)
//	r:u<path>?<query>            the page record of a route (see internal/pagecache/keys.go)
//	r:p<len>:<KeyPrefix>?<query> the same for a route with a KeyPrefix
//	r:f<key>                     the same for a route with a KeyFunc
//	r:...\x00<nonce>\x00<host>...  the variant records of a page
//	t:<tag>                      tag versions (Tag, InvalidateTag)
//	l:<name>                     cross-process locks (LockTimeout,
//	                             CrossProcessLock); l:refresh:<variant> for
//	                             stale-while-revalidate refreshes
//	f:n:<name>:<digest>          template fragments of named cache blocks
//	f:u:<template>:<digest>      template fragments of unnamed cache blocks
//	h:probe                      what the Cache reads and writes to probe a
//	                             store its circuit breaker skips
package keyspace

// Prefixes of the store namespace.
const (
	Value       = "v:"  // typed values and Function results
	Memo        = "m:"  // memoized results
	MemoVersion = "mv:" // memoize version tokens
	Route       = "r:"  // cached pages, page and variant records
	Tag         = "t:"  // tag versions
	Lock        = "l:"  // cross-process locks
	Fragment    = "f:"  // rendered template fragments
	Health      = "h:"  // the circuit breakers' probes

	// Kinds of page keys after Route.
	RoutePath   = 'u' // the request's escaped path
	RoutePrefix = 'p' // RouteConfig.KeyPrefix, length-prefixed
	RouteFunc   = 'f' // RouteConfig.KeyFunc's key

	// Kinds of fragment keys after Fragment.
	FragmentNamed   = "n:" // {% cache ttl "name" ... %}
	FragmentUnnamed = "u:" // {% cache ttl ... %} without a name

	// RefreshLock is the lock name prefix of a background refresh.
	RefreshLock = "refresh:"
)
