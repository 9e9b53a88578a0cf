# make test: installs (as root, with apt-get) and starts redis-server and
# memcached on free loopback ports, runs go vet and the race-enabled tests
# against them, and stops them. The peer benchmarks are a module of their
# own (integration/peers); their tests run too.
GO ?= go
PKGS ?= ./...
PEERS = cd integration/peers &&

.PHONY: test vet bench fuzz

test:
	./scripts/with-servers.sh sh -c '$(GO) vet $(PKGS) && $(GO) test -race -count=1 -timeout 12m $(PKGS) && $(PEERS) $(GO) vet ./... && $(GO) test -race -count=1 ./...'

vet:
	$(GO) vet $(PKGS)
	$(PEERS) $(GO) vet ./...

# make bench: every benchmark once, against real servers, then the peers.
bench:
	./scripts/with-servers.sh $(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(PEERS) $(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 30s ./echocache
	$(GO) test -run '^$$' -fuzz '^FuzzReadResponse$$' -fuzztime 30s ./internal/mcbin
	$(GO) test -run '^$$' -fuzz '^FuzzGetMultiReplies$$' -fuzztime 30s ./internal/mcbin
