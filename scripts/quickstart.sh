#!/usr/bin/env bash
# Install what is missing (Debian 12), build, then run the server or the
# test suite.
#
#   scripts/quickstart.sh server [SERVER OPTIONS...]
#       build and start ivshmem-server in the foreground (default: its
#       defaults, i.e. -F -S /tmp/ivshmem_socket -M ivshmem -l 4M -n 1)
#   scripts/quickstart.sh test [--sanitize]
#       build and run the whole test suite (--sanitize: under
#       AddressSanitizer and UndefinedBehaviorSanitizer, in build-san/)
#   scripts/quickstart.sh bench
#       build and run the benchmarks (tests/bench/)
#   scripts/quickstart.sh demo
#       a Linux VM and a Cortex-M firmware sharing memory: one
#       ivshmem-server, a Linux guest under QEMU on ivshmem-doorbell, the
#       Unicorn example's echo firmware on ivshmem-flat, a channel between
#       them (the test "guest", case "firmware", shown as it runs)
set -euo pipefail

cd "$(dirname "$0")/.."

packages=(gcc g++ meson ninja-build pkg-config libglib2.0-dev libev-dev libjson-glib-dev check
	  libsystemd-dev systemd mandoc strace
	  libunicorn-dev gcc-arm-none-eabi
	  qemu-system-x86 busybox-static)

# install_missing PACKAGE...
. scripts/install-missing.sh

# One closing line for the whole run, from meson's machine-readable log.
summary() {
	python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
    counts[key] += 1
print("tests: %d passed, %d failed, %d skipped" %
      (counts["OK"], counts["FAIL"], counts["SKIP"]))
PY
}

run_tests() {
	local dir=$1 rc=0
	meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
	summary "$dir"
	return $rc
}

build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@"
	fi
	ninja -C "$dir"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
server)
	install_missing "${packages[@]}"
	build build >&2
	exec build/server/ivshmem-server -F "$@"
	;;
test)
	install_missing "${packages[@]}"
	if [ "${1:-}" = "--sanitize" ]; then
		build build-san -Db_sanitize=address,undefined -Db_lundef=false
		export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
		export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
		run_tests build-san
	else
		build build
		run_tests build
	fi
	;;
bench)
	install_missing "${packages[@]}"
	build build
	meson test -C build --benchmark --verbose
	;;
demo)
	install_missing "${packages[@]}"
	build build
	CK_RUN_CASE=firmware meson test -C build guest --verbose
	;;
*)
	echo "usage: $0 server [OPTIONS...] | test [--sanitize] | bench | demo" >&2
	exit 2
	;;
esac
