#!/usr/bin/env bash
# with-servers.sh COMMAND [ARGUMENT...]: runs COMMAND with the shared test
# servers on free loopback ports: a redis-server, a Redis Cluster (3 masters,
# 3 replicas), a master, replica and 3 sentinels, a memcached, a pool of 3,
# a memcached with ASCII authentication (-Y) and one with SASL (-S), named to
# the tests by ECHOCACHE_REDIS_URL, ECHOCACHE_REDIS_CLUSTER_ADDRS,
# ECHOCACHE_REDIS_SENTINEL_ADDRS, ECHOCACHE_REDIS_SENTINEL_MASTER,
# ECHOCACHE_MEMCACHED_ADDR, ECHOCACHE_MEMCACHED_POOL,
# ECHOCACHE_MEMCACHED_AUTH_URL and ECHOCACHE_MEMCACHED_SASL_URL. The servers
# are stopped when the command ends; the exit status is the command's.
#
# Missing Debian packages are installed with apt-get when running as root.
# The launcher itself is Go (internal/servertest/cmd/withservers), the one
# that tests use when they start servers of their own.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

# The packages the servers come from (dpkg -L): redis-server; redis-tools:
# redis-cli, which creates the cluster; memcached; sasl2-bin: saslpasswd2,
# which writes the SASL user database; libsasl2-modules: the PLAIN mechanism.
packages=(redis-server redis-tools memcached sasl2-bin libsasl2-modules)
if command -v dpkg-query >/dev/null 2>&1; then
  need=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "with-servers: installing ${need[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
      # Debian may start the packaged services on their default ports; the
      # tests use servers of their own.
    else
      # The launcher leaves out what is missing (the tests that need it
      # skip, naming it), or fails with CI=true.
      echo "with-servers: not installed: ${need[*]} (run as root to install them with apt-get)" >&2
    fi
  fi
fi

# Build the launcher into a directory of its own and become it (so that it
# gets the signals sent to this script); -unlink removes the executable.
bin=$(mktemp -d "${TMPDIR:-/tmp}/echocache-withservers.XXXXXX")
if ! (cd "$repo" && "${GO:-go}" build -o "$bin/withservers" ./internal/servertest/cmd/withservers); then
  rm -rf "$bin"
  exit 1
fi
exec "$bin/withservers" -unlink "$@"
