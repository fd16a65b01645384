#!/usr/bin/env bash
# remote-xdp.sh — issue 22's multi-host run on one machine, and its
# comparison: four `onecast node --transport xdp --iface oc0` processes, one
# per network namespace (each started from its host<i>/ bundle of
# `onecast keygen --addrs`), driven by `onecast bench --cluster remote` from a
# fifth namespace on the same bridge; interleaved with as many
# `onecast bench --cluster netns --transport xdp` runs of the same point
# (Bracha, digest, n = 4, 16 KiB, MAC authenticators), each of the bench's
# default length (1 s warm-up, 4 s measured).
#
# The run is cmd/onecast's TestBenchRemoteOverXDPInNamespaces with
# ONECAST_REMOTE_XDP_RUNS set: it builds the namespaces with netio/netns,
# asserts on every remote run that every payload was delivered everywhere,
# over AF_XDP, with 0.00 receive-side user-space copies, tears the nodes and
# namespaces down on every exit path, and prints the medians (min–max) of
# both clusters and their ratio.
#
# Usage: sudo scripts/remote-xdp.sh [runs]     (default 3; about 30 s a run pair)
# Output: the table on stdout; each run's JSON result and summary.txt under
# $REMOTE_XDP_OUT (default a temporary directory, printed).
# Root only. Takes /tmp/onecast-netns.lock, as every namespace test does.
set -euo pipefail

RUNS=${1:-3}
OUT=${REMOTE_XDP_OUT:-$(mktemp -d /tmp/onecast-remote-xdp.XXXXXX)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "remote-xdp.sh: network namespaces and AF_XDP need root" >&2
	exit 1
fi
ONECAST_REMOTE_XDP_RUNS=$RUNS ONECAST_REMOTE_XDP_OUT=$OUT \
	flock /tmp/onecast-netns.lock \
	go test -count=1 -timeout 30m -run '^TestBenchRemoteOverXDPInNamespaces$' -v ./cmd/onecast
echo "results: $OUT"
