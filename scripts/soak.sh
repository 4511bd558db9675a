#!/usr/bin/env bash
# The churn soak: build if needed (in build/, as scripts/quickstart.sh
# does), then run tests/soak/churn against one real ivshmem-server.
#
#   scripts/soak.sh [--connections N] [--seed S] [--concurrency C]
#       N peer connections (default 100000), C at once (default 64), the
#       kinds and timings drawn from seed S (default 1). Prints the
#       figures and exits 0 when the server kept its fds and RSS, the
#       observers saw a consistent stream and it exited cleanly; 1 with
#       the reason otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."

connections=100000
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--connections|--seed|--concurrency)
		[ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
		if [ "$1" = --connections ]; then
			connections=$2
		else
			args+=("$1" "$2")
		fi
		shift 2
		;;
	-h|--help)
		sed -n '2,11s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "usage: $0 [--connections N] [--seed S] [--concurrency C]" >&2
		exit 2
		;;
	esac
done

if [ ! -f build/build.ninja ]; then
	meson setup build -Dwerror=true >&2
fi
ninja -C build tests/soak/churn server/ivshmem-server >&2
exec build/tests/soak/churn --server build/server/ivshmem-server \
	--connections "$connections" --progress "${args[@]}"
