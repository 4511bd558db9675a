#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Instructions per access of the ivshmem-flat core, counted by callgrind:
# for each kind, bench-flat-mmio --only KIND --n N runs exactly N accesses
# in run_loop, which is all callgrind collects (--toggle-collect); the
# same loop without the access ("empty") is subtracted and the rest
# divided by N. Instruction counts do not depend on the machine's load,
# so unlike the timed run they compare across runs and commits (for the
# same compiler and flags).
#
# Usage: flat-mmio.sh BENCH_BINARY [N]     (N defaults to 1000000)
#   e.g. tests/bench/flat-mmio.sh build/tests/bench/bench-flat-mmio

set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 BENCH_BINARY [N]" >&2
	exit 2
fi
bench=$1
n=${2:-1000000}
if ! command -v valgrind >/dev/null 2>&1; then
	echo "flat-mmio.sh: valgrind not found" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flat-mmio-cg.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# ir KIND: instructions callgrind counted inside run_loop.
ir() {
	local out="$tmp/cg.$1" total
	if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
		--collect-atstart=no --toggle-collect=run_loop \
		"$bench" --only "$1" --n "$n" >"$tmp/log" 2>&1; then
		echo "flat-mmio.sh: callgrind run of $1 failed:" >&2
		cat "$tmp/log" >&2
		return 1
	fi
	total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
	if [ -z "$total" ]; then
		echo "flat-mmio.sh: no instruction total for $1" >&2
		return 1
	fi
	echo "$total"
}

empty=$(ir empty) || exit 1
echo "flat-mmio (callgrind): $n accesses per kind, empty loop $empty Ir"
printf '%-12s %14s %12s\n' kind "Ir in loop" "Ir/access"
for kind in ivposition intrstatus doorbell deliver bad floor-call \
	floor-load; do
	total=$(ir "$kind") || exit 1
	awk -v k="$kind" -v t="$total" -v e="$empty" -v n="$n" \
		'BEGIN { printf "%-12s %14d %12.2f\n", k, t, (t - e) / n }'
done
