#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz/ (clang, -Dfuzz=enabled), built with
# AddressSanitizer and UndefinedBehaviorSanitizer in build-fuzz/.
#
#   scripts/fuzz.sh build
#       install clang and libFuzzer if missing (Debian 12), set up and
#       build build-fuzz/
#   scripts/fuzz.sh run [--time SECONDS | --runs N] [--jobs J] [TARGET...]
#       run each target (default: all) for SECONDS (default 60), or for N
#       executions, from a copy of its seed corpus in
#       build-fuzz/corpus/TARGET/, where the inputs it finds go (the
#       tree's corpus is not touched); crashes go to build-fuzz/artifacts/;
#       prints executions and exec/s.  --jobs J runs J fuzzer processes
#       per target (default 1; one per core is the fastest) on that one
#       corpus, each taking up what the others find; N is then their
#       total, and a finding in one stops them all.  Each run, however
#       it ends, is added to build-fuzz/corpus/TARGET.runs, and the
#       total on that corpus is printed
#   scripts/fuzz.sh ci
#       build, then run each target for 20 s (what .ci/run does)
#   scripts/fuzz.sh coverage TARGET...
#       build a source-coverage build (build-fuzz-cov/, no sanitizers),
#       run the target's corpus (build-fuzz/corpus/TARGET/ when a run
#       made one, else the seeds) through it and report the line
#       coverage of the files that target drives
#
# The targets use memfds and abstract socket addresses: they leave
# nothing in /dev/shm or /tmp.
set -euo pipefail

cd "$(dirname "$0")/.."

targets=(fuzz-cli fuzz-device-core fuzz-peer-stream fuzz-server-input
	 fuzz-control fuzz-channel)
packages=(clang llvm libclang-rt-14-dev meson ninja-build pkg-config
	  libglib2.0-dev libev-dev libjson-glib-dev)

# The source files each target drives, for its coverage report.
target_files() {
	case "$1" in
	fuzz-cli) echo common/cli.c ;;
	fuzz-device-core) echo device-core/ivshmem-flat.c ;;
	fuzz-peer-stream) echo libivshmem/peer.c libivshmem/wire.c ;;
	fuzz-server-input) echo libivshmem/server.c libivshmem/wire.c libivshmem/table.c ;;
	fuzz-control) echo server/control.c common/json-line.c ;;
	fuzz-channel) echo libivshmem/ivchan.c ;;
	*) echo "unknown target $1 (the targets: ${targets[*]})" >&2; exit 2 ;;
	esac
}

# install_missing PACKAGE...
. scripts/install-missing.sh

build() {
	install_missing "${packages[@]}"
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dwerror=true -Dfuzz=enabled \
			-Db_sanitize=address,undefined -Db_lundef=false \
			-Dtests=disabled
	fi
	ninja -C build-fuzz -j2
}

# GLib's slice allocator would hide leaks; a finding aborts with a report.
export G_SLICE=always-malloc
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1

# run_one TARGET SECONDS RUNS JOBS (one of SECONDS and RUNS 0): 0, or 1
# when the target found something.
run_one() {
	local t=$1 secs=$2 runs=$3 jobs=$4 rc=0 execs=0 rate=0 start limit
	local corpus=build-fuzz/corpus/$t j r pid pid_log flog failed=0 interrupted=0
	local -a logs=()
	local -A logof=()	# log of each fuzzer still running, by pid

	mkdir -p "$corpus" build-fuzz/artifacts
	cp -n tests/fuzz/corpus/"$t"/* "$corpus"/
	if [ "$runs" -gt 0 ]; then
		# Each process does its share; together at least RUNS.
		limit=-runs=$(((runs + jobs - 1) / jobs))
	else
		limit=-max_total_time=$secs
	fi
	start=$SECONDS
	for ((j = 1; j <= jobs; j++)); do
		if [ "$jobs" -eq 1 ]; then
			logs+=("build-fuzz/fuzz-$t.log")
		else
			logs+=("build-fuzz/fuzz-$t.$j.log")
		fi
		build-fuzz/tests/fuzz/"$t" "$limit" -max_len=4096 \
			-print_final_stats=1 -timeout=25 \
			-artifact_prefix=build-fuzz/artifacts/"$t"- \
			"$corpus" >"${logs[-1]}" 2>&1 &
		logof[$!]=${logs[-1]}
	done
	# An interrupt reaches the fuzzers too when it is sent to the process
	# group (^C); sent to this script alone, it is passed on.
	trap 'interrupted=1; kill -INT "${!logof[@]}" 2>/dev/null || true' INT TERM
	while [ ${#logof[@]} -gt 0 ]; do
		r=0
		pid=
		wait -n -p pid "${!logof[@]}" || r=$?
		# wait ends early, with no pid, when a trapped signal arrives.
		[ -n "${pid:-}" ] || continue
		pid_log=${logof[$pid]}
		unset "logof[$pid]"
		if [ $r -ne 0 ] && ! grep -q 'libFuzzer: run interrupted' "$pid_log"; then
			if [ $failed -eq 0 ]; then
				# Stop the others: what they did still counts.
				kill -INT "${!logof[@]}" 2>/dev/null || true
				rc=$r
				flog=$pid_log
			fi
			failed=1
		elif [ $r -ne 0 ] && [ $failed -eq 0 ]; then
			interrupted=1
		fi
	done
	trap - INT TERM
	secs=$((SECONDS - start))
	for j in "${logs[@]}"; do
		r=$(sed -n 's/^stat::number_of_executed_units: *//p' "$j")
		execs=$((execs + ${r:-0}))
		r=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$j")
		rate=$((rate + ${r:-0}))
	done
	# Every run on this corpus, for its total: what it ran, and how it
	# ended.
	r=finished
	[ $interrupted -ne 0 ] && r=interrupted
	[ $failed -ne 0 ] && r=finding
	printf '%s %s executions in %s s, %s processes, %s\n' "$(date -u +%FT%TZ)" \
		"$execs" "$secs" "$jobs" "$r" >>"$corpus.runs"
	if [ $failed -ne 0 ]; then
		echo "$t: FAILED (exit $rc) after $execs executions; log: $flog" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|.*Test unit written)' "$flog" >&2 || tail -20 "$flog" >&2
		return 1
	fi
	if [ $interrupted -ne 0 ]; then
		echo "$t: interrupted after $execs executions in $secs s ($rate exec/s), nothing found" >&2
		exit 130
	fi
	printf '%-18s %12s executions in %4s s, %8s exec/s, corpus %s inputs%s\n' \
		"$t" "$execs" "$secs" "$rate" "$(find "$corpus" -type f | wc -l)" \
		"$([ "$jobs" -gt 1 ] && echo ", $jobs processes")"
	awk -v t="$t" '{ n += $2; k++ } END {
		printf "%-18s %12d executions on this corpus in %d runs (%s)\n", t, n, k, FILENAME }' "$corpus.runs"
}

run() {
	local secs=60 runs=0 jobs=1 failed=() list=()

	while [ $# -gt 0 ]; do
		case "$1" in
		--time) secs=$2; shift 2 ;;
		--time=*) secs=${1#--time=}; shift ;;
		--runs) runs=$2; shift 2 ;;
		--runs=*) runs=${1#--runs=}; shift ;;
		--jobs) jobs=$2; shift 2 ;;
		--jobs=*) jobs=${1#--jobs=}; shift ;;
		*) target_files "$1" >/dev/null; list+=("$1"); shift ;;
		esac
	done
	if ! [[ $secs =~ ^[0-9]+$ && $runs =~ ^[0-9]+$ ]]; then
		echo "$0 run: --time and --runs take a whole number" >&2
		exit 2
	fi
	if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
		echo "$0 run: --jobs takes a whole number of processes, 1 or more" >&2
		exit 2
	fi
	[ ${#list[@]} -eq 0 ] && list=("${targets[@]}")
	for t in "${list[@]}"; do
		if [ ! -x build-fuzz/tests/fuzz/"$t" ]; then
			echo "build-fuzz/tests/fuzz/$t is not built: run $0 build" >&2
			exit 1
		fi
	done
	for t in "${list[@]}"; do
		run_one "$t" "$secs" "$runs" "$jobs" || failed+=("$t")
	done
	if [ ${#failed[@]} -gt 0 ]; then
		echo "fuzz: findings in ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
		return 1
	fi
}

coverage() {
	local dir=build-fuzz-cov prof

	[ $# -gt 0 ] || { echo "usage: $0 coverage TARGET..." >&2; exit 2; }
	install_missing "${packages[@]}"
	# What meson setup and the build run is instrumented too: its
	# profiles go to $dir, not the current directory.
	export LLVM_PROFILE_FILE=$PWD/$dir/setup-%p.profraw
	if [ ! -f $dir/build.ninja ]; then
		CC=clang meson setup $dir -Dwerror=true -Dfuzz=enabled \
			-Dfuzz_no_instrument=true -Dtests=disabled \
			-Dc_args='-fprofile-instr-generate -fcoverage-mapping' \
			-Dc_link_args='-fprofile-instr-generate'
	fi
	ninja -C $dir -j2
	for t in "$@"; do
		local corpus=build-fuzz/corpus/$t files
		files=$(target_files "$t")
		[ -d "$corpus" ] || corpus=tests/fuzz/corpus/$t
		prof=$dir/profile/$t
		rm -rf "$prof"
		mkdir -p "$prof"
		find "$corpus" -type f -print0 |
			LLVM_PROFILE_FILE="$prof/%p.profraw" \
			xargs -0 -n 500 $dir/tests/fuzz/"$t" >/dev/null 2>&1 || true
		llvm-profdata-14 merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"
		echo "$t: $(find "$corpus" -type f | wc -l) inputs from $corpus"
		# shellcheck disable=SC2086
		# The files are compiled as build-fuzz-cov/../FILE: the summary
		# names each as it is in the tree.
		llvm-cov-14 export -summary-only $dir/tests/fuzz/"$t" \
			-instr-profile="$prof/all.profdata" |
			python3 -c '
import json, os, sys
want = sys.argv[1:]
for f in json.load(sys.stdin)["data"][0]["files"]:
    name = os.path.relpath(os.path.normpath(f["filename"]))
    if name in want:
        l = f["summary"]["lines"]
        print("  %-28s lines %5d of %5d covered (%.1f%%)"
              % (name, l["covered"], l["count"], l["percent"]))
' $files
	done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
build) build ;;
run) run "$@" ;;
ci)
	build
	run --time 20
	;;
coverage) coverage "$@" ;;
*)
	echo "usage: $0 build | run [--time SECONDS | --runs N] [--jobs J] [TARGET...] | ci | coverage TARGET..." >&2
	exit 2
	;;
esac
