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
    p=$(( (RANDOM % 20000) + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "with-servers: no free port" >&2; return 1
}

wait_port() {
  for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  echo "with-servers: $2 did not start on port $1" >&2; return 1
}

user_flag=()
[ "$(id -u)" = 0 ] && user_flag=(-u root)

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$rport" redis-server

mport=$(free_port)
memcached -l 127.0.0.1 -p "$mport" -U 0 -m 256 "${user_flag[@]}" >"$work/mc.log" 2>&1 &
pids+=($!)
wait_port "$mport" memcached

aport=$(free_port)
printf 'echocache:s3cret-pass\n' >"$work/authfile"
memcached -l 127.0.0.1 -p "$aport" -U 0 -m 64 -Y "$work/authfile" "${user_flag[@]}" >"$work/mca.log" 2>&1 &
pids+=($!)
wait_port "$aport" "memcached -Y"

export ECHOCACHE_REDIS_URL="redis://127.0.0.1:$rport/0"
export ECHOCACHE_MEMCACHED_ADDR="127.0.0.1:$mport"
export ECHOCACHE_MEMCACHED_AUTH_URL="memcached://echocache:s3cret-pass@127.0.0.1:$aport"
echo "with-servers: redis $ECHOCACHE_REDIS_URL, memcached $ECHOCACHE_MEMCACHED_ADDR, authenticated memcached 127.0.0.1:$aport"

"$@"
