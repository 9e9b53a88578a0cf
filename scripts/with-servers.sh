#!/usr/bin/env bash
# Runs a command with a real redis-server, memcached and authenticated
# memcached on free loopback ports, exported to the tests as
# ECHOCACHE_REDIS_URL, ECHOCACHE_MEMCACHED_ADDR and ECHOCACHE_MEMCACHED_AUTH_URL.
# Missing servers are installed with apt-get when running as root.
# The servers are stopped when the command ends.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# SASL memcached (-S) for internal/mcbin's tests: saslpasswd2 writes the
# user database, libsasl2-modules holds the PLAIN mechanism.
command -v saslpasswd2 >/dev/null 2>&1 || [ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${Status}' libsasl2-modules 2>/dev/null | grep -q 'install ok installed' || need+=(libsasl2-modules)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "with-servers: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts the packaged services on their default ports; the tests use their own.
  else
    echo "with-servers: ${need[*]} missing and cannot install (not root or no apt-get)" >&2
    exit 1
  fi
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  local p
  for _ in $(seq 1 200); do
    # Below Linux's ephemeral range (32768-60999), where outgoing
    # connections take their ports, so a port found free stays free.
    p=$(( (RANDOM % 10000) + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "with-servers: no free port" >&2; return 1
}

# start NAME CMD...: runs CMD with {PORT} replaced by a free port until the
# server listens, trying up to five ports (another process can take a port
# between the check and the start). Sets $port and appends the pid to $pids.
start() {
  local name=$1; shift
  local attempt pid arg args
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    args=()
    for arg in "$@"; do args+=("${arg//\{PORT\}/$port}"); done
    "${args[@]}" >"$work/$name.$attempt.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1000); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        pids+=("$pid"); return 0
      fi
      sleep 0.02
    done
    kill "$pid" 2>/dev/null || true
    echo "with-servers: $name did not start on port $port (attempt $attempt):" >&2
    tail -n 5 "$work/$name.$attempt.log" >&2 || true
  done
  return 1
}

user_flag=()
[ "$(id -u)" = 0 ] && user_flag=(-u root)
printf 'echocache:s3cret-pass\n' >"$work/authfile"

start redis redis-server --port '{PORT}' --bind 127.0.0.1 --save '' --appendonly no --dir "$work"
rport=$port
start memcached memcached -l 127.0.0.1 -p '{PORT}' -U 0 -m 256 "${user_flag[@]}"
mport=$port
start memcached-auth memcached -l 127.0.0.1 -p '{PORT}' -U 0 -m 64 -Y "$work/authfile" "${user_flag[@]}"
aport=$port

export ECHOCACHE_REDIS_URL="redis://127.0.0.1:$rport/0"
export ECHOCACHE_MEMCACHED_ADDR="127.0.0.1:$mport"
export ECHOCACHE_MEMCACHED_AUTH_URL="memcached://echocache:s3cret-pass@127.0.0.1:$aport"
echo "with-servers: redis $ECHOCACHE_REDIS_URL, memcached $ECHOCACHE_MEMCACHED_ADDR, authenticated memcached 127.0.0.1:$aport"

"$@"
