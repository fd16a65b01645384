#!/usr/bin/env bash
# kvbench.sh — the onecast BFT key-value service (4 PBFT replicas, memcached
# protocol, fsync on) against one real memcached and a 3-member etcd cluster,
# all on loopback, in one run:
#   1. Debian's memcslap (libmemcached-tools) drives the memcached-protocol
#      systems (set and get tests; memcslap's own value sizes, the same for
#      both) — ops/s;
#   2. kvbench (kv/kvbench, a closed-loop Go driver) drives all three with the
#      same fixed value sizes — ops/s, p50 and p99.
# A part whose binary is missing is skipped with a message
# (apt-get install -y memcached libmemcached-tools etcd-server).
#
# Usage: scripts/kvbench.sh [-s "128 4096"] [-c 16] [-d 10s] [-n 1000]
# (about 2 minutes with the defaults on 2 cores)
# KV_FLAGS adds flags to every `onecast kv` (e.g. KV_FLAGS=-fast-reads).
# Output: a markdown table on stdout; logs under $KVBENCH_DIR (default a
# temporary directory, removed at the end unless KVBENCH_KEEP=1).
set -euo pipefail

SIZES="128 4096"
CONC=16
DURATION=10s
SLAPN=1000
while getopts "s:c:d:n:" o; do
	case $o in
	s) SIZES=$OPTARG ;;
	c) CONC=$OPTARG ;;
	d) DURATION=$OPTARG ;;
	n) SLAPN=$OPTARG ;;
	*) echo "usage: $0 [-s sizes] [-c conc] [-d duration] [-n memcslap ops per thread]" >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${KVBENCH_DIR:-$(mktemp -d /tmp/kvbench.XXXXXX)}
mkdir -p "$W"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "${KVBENCH_KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
log() { echo "kvbench: $*" >&2; }

wait_port() { # host port
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on $1:$2"; return 1
}

BASE=$((27000 + RANDOM % 2000))
log "building (work dir $W)"
(cd "$ROOT" && go build -o "$W/onecast" ./cmd/onecast && go build -o "$W/kvbench" ./kv/kvbench)

# --- onecast kv: 4 PBFT replicas -------------------------------------------
"$W/onecast" keygen -n 4 -protocol pbft -mode digest -auth mac -port "$BASE" -out "$W/cluster" >/dev/null
KV_ADDRS=()
for i in 0 1 2 3; do
	"$W/onecast" kv -config "$W/cluster/cluster.yaml" -id $i -data "$W/kvdata$i" -log-level warn ${KV_FLAGS:-} \
		>"$W/kv$i.out" 2>"$W/kv$i.log" &
	PIDS+=($!)
	KV_ADDRS+=("127.0.0.1:$((BASE + 100 + i))")
done
for a in "${KV_ADDRS[@]}"; do wait_port "${a%:*}" "${a#*:}"; done
KV=$(IFS=,; echo "${KV_ADDRS[*]}")

# --- memcached ------------------------------------------------------------
MC=""
if command -v memcached >/dev/null; then
	MCPORT=$((BASE + 300))
	memcached -u root -l 127.0.0.1 -p $MCPORT -U 0 -t 4 -m 1024 >"$W/memcached.log" 2>&1 &
	PIDS+=($!)
	wait_port 127.0.0.1 $MCPORT
	MC=127.0.0.1:$MCPORT
else
	log "memcached not installed: skipping it (apt-get install -y memcached)"
fi

# --- etcd: 3 members ----------------------------------------------------------
ETCD=""
if command -v etcd >/dev/null; then
	EB=$((BASE + 400))
	CLUSTER=""
	for i in 0 1 2; do CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((EB + 10 * i + 1))"; done
	for i in 0 1 2; do
		etcd --name e$i --data-dir "$W/etcd$i" \
			--listen-client-urls http://127.0.0.1:$((EB + 10 * i)) --advertise-client-urls http://127.0.0.1:$((EB + 10 * i)) \
			--listen-peer-urls http://127.0.0.1:$((EB + 10 * i + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((EB + 10 * i + 1)) \
			--initial-cluster "$CLUSTER" --initial-cluster-state new --log-level error >"$W/etcd$i.log" 2>&1 &
		PIDS+=($!)
		ETCD+="${ETCD:+,}http://127.0.0.1:$((EB + 10 * i))"
	done
	for i in 0 1 2; do wait_port 127.0.0.1 $((EB + 10 * i)); done
	sleep 2 # leader election
else
	log "etcd not installed: skipping it (apt-get install -y etcd-server)"
fi

# --- memcslap ---------------------------------------------------------------
ROWS=()
slap() { # name servers test
	local out secs keys
	out=$(timeout 120 memcslap -s "$2" -t "$3" -c "$CONC" -e "$SLAPN" 2>&1) || { log "memcslap $1 $3 failed or timed out: $out"; return; }
	secs=$(echo "$out" | sed -n "s/^Time to $3 *\([0-9]*\) keys by.*: *\([0-9.]*\) seconds.*/\2/p")
	keys=$(echo "$out" | sed -n "s/^Time to $3 *\([0-9]*\) keys by.*/\1/p")
	if [ -n "$secs" ] && [ -n "$keys" ]; then
		ROWS+=("| memcslap | $1 | $3 | memcslap's | $CONC | $keys | $(awk "BEGIN{printf \"%.0f\", $keys/$secs}") | – | – |")
	else
		log "memcslap $1 $3: unparsed output: $out"
	fi
}
if command -v memcslap >/dev/null; then
	for t in set get; do
		# memcslap hashes keys over the servers it is given: spread over the replicas.
		slap "onecast kv (4× PBFT)" "$KV" $t
		[ -n "$MC" ] && slap "memcached" "$MC" $t
	done
else
	log "memcslap not installed: skipping it (apt-get install -y libmemcached-tools)"
fi

# --- kvbench ------------------------------------------------------------------
bench() { # name flag targets size
	local line
	while read -r line; do
		set -- $line
		ROWS+=("| kvbench | $NAME | $2 | $3 | $4 | $5 | $6 | $7 | $8 |")
		[ "$9" = 0 ] || log "$NAME $2: $9 errors"
	done < <(timeout 300 "$W/kvbench" -name x "$FLAG" "$TARGETS" -size "$SIZE" -conc "$CONC" -duration "$DURATION" || log "kvbench $NAME failed or timed out")
}
for SIZE in $SIZES; do
	NAME="onecast kv (4× PBFT)" FLAG=-memcached TARGETS=$KV bench
	[ -n "$MC" ] && NAME="memcached" FLAG=-memcached TARGETS=$MC bench
	[ -n "$ETCD" ] && NAME="etcd (3 members)" FLAG=-etcd TARGETS=$ETCD bench
done

echo "| driver | system | op | value bytes | concurrency | ops | ops/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
