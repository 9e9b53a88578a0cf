# make test: starts the shared test servers on free loopback ports (a
# redis-server, a Redis Cluster of 3 masters and 3 replicas, a master,
# replica and 3 sentinels, a memcached, a pool of 3, a memcached with ASCII
# authentication and one with SASL; about 3 s), runs go vet and the
# race-enabled tests against them, and stops them. scripts/with-servers.sh
# first installs missing Debian packages with apt-get (as root), then runs
# the Go launcher, internal/servertest/cmd/withservers. Tests that kill or
# wedge a server start their own with servertest. The peer benchmarks are a
# module of their own (integration/peers); their tests run too. First,
# make cross checks that the repository vets on macOS and builds on Windows
# (CI runs make test, so it checks both).
GO ?= go
PKGS ?= ./...
PEERS = cd integration/peers &&

.PHONY: test vet cross bench bench-peers fuzz

test: cross
	GO=$(GO) ./scripts/with-servers.sh sh -c '$(GO) vet $(PKGS) && $(GO) test -race -count=1 -timeout 12m $(PKGS) && $(PEERS) $(GO) vet ./... && $(GO) test -race -count=1 ./...'

vet:
	$(GO) vet $(PKGS)
	$(PEERS) $(GO) vet ./...

# make cross: the repository vets on macOS and builds on Windows (a few
# minutes with an empty build cache: the standard library is compiled for
# both).
cross:
	GOOS=darwin $(GO) vet $(PKGS)
	GOOS=windows $(GO) build $(PKGS)

# make bench: every Go benchmark once, against real servers.
bench:
	GO=$(GO) ./scripts/with-servers.sh $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# make bench-peers: echocache, the limits and its peers, each in a server
# process of its own on loopback, driven by wrk in interleaved rounds; prints
# one markdown table (integration/peers/cmd/bench-peers). Installs wrk with
# apt-get when run as root. BENCH_PEERS_FLAGS passes flags, such as
# -rounds 10 or -systems echo,echocache-memory.
BENCH_PEERS_FLAGS ?=
bench-peers:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  echo "bench-peers: installing wrk" && export DEBIAN_FRONTEND=noninteractive && \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; } || \
	  { echo "bench-peers: wrk missing and cannot install (not root or no apt-get)" >&2; exit 1; }
	$(PEERS) $(GO) build -o /dev/null ./cmd/bench-peers
	GO=$(GO) ./scripts/with-servers.sh sh -c '$(PEERS) exec $(GO) run ./cmd/bench-peers $(BENCH_PEERS_FLAGS)'

# make fuzz: every fuzz target of the module, found with grep, each run
# alone (-fuzz '^FuzzX$') for FUZZTIME. FUZZ=FuzzX runs one.
FUZZTIME ?= 30s
FUZZ ?= Fuzz
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func $(FUZZ)' . | grep -v '^./integration/peers/' | sort); do \
	  d=$$(dirname $$f); \
	  for t in $$(grep -o '^func $(FUZZ)[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    echo "fuzz $$d $$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$d; \
	  done; \
	done
