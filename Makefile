# make test: installs (as root, with apt-get) and starts redis-server and
# memcached on free loopback ports, runs go vet and the race-enabled tests
# against them, and stops them.
GO ?= go
PKGS ?= ./...

.PHONY: test vet bench fuzz

test:
	./scripts/with-servers.sh sh -c '$(GO) vet $(PKGS) && $(GO) test -race -count=1 -timeout 12m $(PKGS)'

vet:
	$(GO) vet $(PKGS)

# make bench: every benchmark once, against real servers.
bench:
	./scripts/with-servers.sh $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 30s ./echocache
