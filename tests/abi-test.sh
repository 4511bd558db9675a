#!/bin/bash
# SPDX-License-Identifier: MIT
#
# ABI hygiene of libivshmem.so. What the library exports is exactly the
# global names of libivshmem/libivshmem.sym, each at the version of the
# node that lists it (a symbol that leaks, or one with no version, is an
# ABI promise nobody meant to make); every function declared in the
# public header is marked IVSHMEM_EXPORT and listed in the map, and every
# name in the map is declared in the header (the library is built with
# -fvisibility=hidden: a function without the marker is not exported
# whatever the map says). The soname is libivshmem.so.0. And the public
# header stands alone: it compiles, included twice, in a tiny program
# that uses its types and links against the library, as strict C99, as
# C11 and as C++11 (an emulator or a host program may be either).
#
# Usage: abi-test.sh LIBIVSHMEM_SO SOURCE_ROOT CC [CC ARGS...]
#   CC is the C compiler command (meson's cc.cmd_array(), so a ccache
#   wrapper is fine). The C++ compiler is $CXX or g++ from PATH; the C++
#   check is skipped, said so, when there is none.

set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 LIBIVSHMEM_SO SOURCE_ROOT CC [CC ARGS...]" >&2
	exit 2
fi
so=$1
src=$2
shift 2
cc=("$@")
# sort, join and comm must agree on the order.
export LC_ALL=C
map=$src/libivshmem/libivshmem.sym
header=$src/libivshmem/ivshmem.h

for tool in readelf awk; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not found"
		exit 77
	fi
done
for f in "$so" "$map" "$header"; do
	if [ ! -f "$f" ]; then
		echo "FAIL $f does not exist"
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/abi-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
ok() {
	echo "ok   $*"
}

# ---- the map ---------------------------------------------------------------

# "name version" for every global name in the map: the node a name is
# listed in is the version it must carry.
awk '
	{ sub(/#.*/, "") }
	/^[[:space:]]*[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*\{/ {
		node = $1; sub(/\{.*/, "", node); scope = ""; next
	}
	/^[[:space:]]*\}/ { node = ""; scope = ""; next }
	/^[[:space:]]*global:/ { scope = "global"; sub(/^[[:space:]]*global:/, "") }
	/^[[:space:]]*local:/ { scope = "local"; sub(/^[[:space:]]*local:/, "") }
	scope == "global" && node != "" {
		n = split($0, w, /[;[:space:]]+/)
		for (i = 1; i <= n; i++)
			if (w[i] != "")
				print w[i], node
	}
' "$map" | sort >"$tmp/map"
if [ ! -s "$tmp/map" ]; then
	fail "no global names found in $map"
	exit 1
fi
if ! sed 's/#.*//' "$map" | tr -d ' \t\n' | grep -q 'local:\*;'; then
	fail "$map has no 'local: *;': everything not listed would be exported"
fi
ok "$(wc -l <"$tmp/map") global names in libivshmem.sym"

# ---- what the library exports ----------------------------------------------

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libivshmem.so.0 ]; then
	ok "SONAME $soname"
else
	fail "SONAME is '$soname', not libivshmem.so.0"
fi

# The version nodes the library defines (the base entry is the soname).
readelf -W --version-info "$so" |
	sed -n 's/.*Flags: none .*Name: \([^ ]*\).*/\1/p' | sort -u >"$tmp/nodes"

# "name version" for every defined dynamic symbol ("-" when it has no
# version), leaving out the symbols that define the version nodes.
readelf --dyn-syms -W "$so" | awk -v nodes="$tmp/nodes" '
	BEGIN { while ((getline n < nodes) > 0) node[n] = 1 }
	$1 ~ /^[0-9]+:$/ && NF >= 8 && $7 != "UND" {
		name = $8; ver = "-"
		if (index(name, "@")) {
			ver = name; sub(/^[^@]*@+/, "", ver); sub(/@.*/, "", name)
		}
		if ($7 == "ABS" && (name in node))
			next
		print name, ver
	}
' | sort >"$tmp/exported"

cut -d' ' -f1 "$tmp/map" | sort -u >"$tmp/map.names"
cut -d' ' -f1 "$tmp/exported" | sort -u >"$tmp/exported.names"
extra=$(comm -13 "$tmp/map.names" "$tmp/exported.names")
missing=$(comm -23 "$tmp/map.names" "$tmp/exported.names")
if [ -n "$extra" ]; then
	fail "exported but not in libivshmem.sym:"
	echo "$extra" | sed 's/^/       /'
fi
if [ -n "$missing" ]; then
	fail "in libivshmem.sym but not exported (no IVSHMEM_EXPORT, or not defined):"
	echo "$missing" | sed 's/^/       /'
fi
[ -z "$extra" ] && [ -z "$missing" ] &&
	ok "exported symbols are exactly the names in libivshmem.sym"

# Each exported name at the default version of its node.
badver=$(join "$tmp/map" "$tmp/exported" | awk '$2 != $3 {
	printf "%s: %s, not %s\n", $1, ($3 == "-" ? "no version" : "version " $3), $2 }')
unversioned=$(awk '$2 == "-" { print $1 }' "$tmp/exported")
if [ -n "$badver" ]; then
	fail "exported at the wrong version:"
	echo "$badver" | sed 's/^/       /'
fi
if [ -n "$unversioned" ]; then
	fail "exported without a version:"
	echo "$unversioned" | sed 's/^/       /'
fi
if ! readelf --dyn-syms -W "$so" | awk '$7 != "UND"' | grep -q '@@'; then
	fail "no symbol at a default version (@@)"
fi
[ -z "$badver" ] && [ -z "$unversioned" ] &&
	ok "every exported symbol at its node's version:" \
		"$(cut -d' ' -f2 "$tmp/map" | sort -u | paste -sd,)"
notprefixed=$(grep -v '^ivshmem_' "$tmp/exported.names")
if [ -n "$notprefixed" ]; then
	fail "exported names without the ivshmem_ prefix:"
	echo "$notprefixed" | sed 's/^/       /'
fi
# One pattern: ivshmem_<object>_<verb> for the objects of the header, and
# the two functions of the library itself.
offpattern=$(grep -vE '^ivshmem_((shm|socket|server|peer|layout|channel|pci)_[a-z_]+|version|strerror)$' \
	"$tmp/exported.names")
if [ -n "$offpattern" ]; then
	fail "exported names not of the form ivshmem_{shm,socket,server,peer,layout,channel,pci}_<verb>:"
	echo "$offpattern" | sed 's/^/       /'
else
	ok "every exported name is ivshmem_<object>_<verb> (or version, strerror)"
fi

# ---- the header --------------------------------------------------------------

mkdir -p "$tmp/inc/libivshmem"
cp "$header" "$tmp/inc/libivshmem/ivshmem.h"

# Declarations of the preprocessed header (comments gone, IVSHMEM_EXPORT
# expanded), one per line: every ivshmem_*( in it is a function
# declarator. Each must carry the export attribute.
printf '#include <libivshmem/ivshmem.h>\n' >"$tmp/decls.c"
if ! "${cc[@]}" -E -P -I"$tmp/inc" "$tmp/decls.c" >"$tmp/pp" 2>"$tmp/pp.err"; then
	fail "preprocessing ivshmem.h"
	sed 's/^/     | /' "$tmp/pp.err"
else
	tr '\n' ' ' <"$tmp/pp" | tr ';{}' '\n\n\n' |
		grep -E '\<ivshmem_[A-Za-z0-9_]+[[:space:]]*\(' >"$tmp/fdecls"
	grep -oE '\<ivshmem_[A-Za-z0-9_]+[[:space:]]*\(' "$tmp/fdecls" |
		sed 's/[[:space:]]*($//' | sort -u >"$tmp/header.names"
	unmarked=$(grep -v 'visibility *( *"default" *)' "$tmp/fdecls" |
		grep -oE '\<ivshmem_[A-Za-z0-9_]+[[:space:]]*\(' |
		sed 's/[[:space:]]*($//' | sort -u)
	if [ -n "$unmarked" ]; then
		fail "declared in ivshmem.h without IVSHMEM_EXPORT:"
		echo "$unmarked" | sed 's/^/       /'
	fi
	notinmap=$(comm -23 "$tmp/header.names" "$tmp/map.names")
	notinheader=$(comm -13 "$tmp/header.names" "$tmp/map.names")
	if [ -n "$notinmap" ]; then
		fail "declared in ivshmem.h but not in libivshmem.sym:"
		echo "$notinmap" | sed 's/^/       /'
	fi
	if [ -n "$notinheader" ]; then
		fail "in libivshmem.sym but not declared in ivshmem.h:"
		echo "$notinheader" | sed 's/^/       /'
	fi
	[ -z "$unmarked" ] && [ -z "$notinmap" ] && [ -z "$notinheader" ] &&
		ok "ivshmem.h: $(wc -l <"$tmp/header.names") functions, all IVSHMEM_EXPORT, the same names as libivshmem.sym"
fi

# A program that includes the header (twice: the guard), uses its types
# and constants, takes functions' addresses with their exact types and
# calls a few, then links against the library: a C++ build without
# extern "C" would not link.
cat >"$tmp/use.c" <<'EOF'
#include <libivshmem/ivshmem.h>
#include <libivshmem/ivshmem.h>

#include <errno.h>
#include <string.h>

static void watch(void *user, int fd, int events)
{
	(void)user;
	(void)fd;
	(void)events;
}

static void ready(void *user, struct ivshmem_peer *peer)
{
	(void)user;
	(void)peer;
}

int main(void)
{
	struct ivshmem_server_config scfg;
	struct ivshmem_server_ops sops;
	struct ivshmem_peer_config pcfg;
	struct ivshmem_peer_ops pops;
	struct ivshmem_server_peer_info info;
	struct ivshmem_server_event ev;
	enum ivshmem_shm_kind kind = IVSHMEM_SHM_MEMFD;
	enum ivshmem_peer_state state = IVSHMEM_PEER_IDLE;
	enum ivshmem_log_priority prio = IVSHMEM_LOG_DEBUG;
	int (*peer_connect)(struct ivshmem_peer *, const char *) =
		ivshmem_peer_connect;
	int (*server_ring)(struct ivshmem_server *, int, unsigned) =
		ivshmem_server_ring;
	void (*peer_free)(struct ivshmem_peer *) = ivshmem_peer_free;
	struct ivshmem_peer *peer = 0;

	memset(&scfg, 0, sizeof(scfg));
	memset(&sops, 0, sizeof(sops));
	memset(&pcfg, 0, sizeof(pcfg));
	memset(&pops, 0, sizeof(pops));
	scfg.listen_fd = -1;
	scfg.shm_fd = -1;
	scfg.vectors = 1;
	scfg.max_peers = IVSHMEM_MAX_PEERS;
	sops.watch = watch;
	pcfg.vectors = IVSHMEM_MAX_VECTORS;
	pcfg.flags = IVSHMEM_PEER_NO_MAP;
	pops.ready = ready;
	info.connected_ns = 0;
	info.reserved[0] = 0;
	ev.type = IVSHMEM_EVENT_PEER_JOINED;
	ev.reason = IVSHMEM_LEAVE_KICKED;
	(void)ev;
	(void)info;
	(void)kind;
	(void)state;
	(void)prio;
	(void)server_ring;
	/* A negative fd: refused, and nothing to clean up. */
	if (ivshmem_server_new(&scfg, &sops, 0, 0) != -EINVAL)
		return 1;
	if (ivshmem_peer_new(&pcfg, &pops, 0, &peer) < 0)
		return 1;
	if (peer_connect(peer, "") != -EINVAL)
		return 1;
	peer_free(peer);
	if (ivshmem_version()[0] == '\0' || !ivshmem_strerror(-EPROTO))
		return 1;
	return 0;
}
EOF
cp "$tmp/use.c" "$tmp/use.cc"

# build NAME COMPILER... : compile and link the program; run it.
build() {
	local name=$1
	shift
	# shellcheck disable=SC2086 # SANITIZE_FLAGS is a list of flags
	if ! "$@" ${SANITIZE_FLAGS:-} -I"$tmp/inc" -o "$tmp/use" "$so" >"$tmp/out" 2>&1; then
		fail "$name: the public header does not compile alone"
		echo "     command: $* -I$tmp/inc -o $tmp/use $so"
		sed 's/^/     | /' "$tmp/out"
		return
	fi
	if ! LD_LIBRARY_PATH=$(dirname "$so") "$tmp/use" >"$tmp/out" 2>&1; then
		fail "$name: the program built with the header failed to run"
		sed 's/^/     | /' "$tmp/out"
		return
	fi
	ok "$name"
}
strict=(-pedantic -Werror -Wall -Wextra -Wstrict-prototypes)
build "ivshmem.h as C99 (-std=c99 -pedantic -Werror -Wall -Wextra)" \
	"${cc[@]}" -std=c99 "${strict[@]}" -x c "$tmp/use.c" -x none
build "ivshmem.h as C11 (-std=c11 -pedantic -Werror -Wall -Wextra)" \
	"${cc[@]}" -std=c11 "${strict[@]}" -x c "$tmp/use.c" -x none

cxx=${CXX:-g++}
if command -v "${cxx%% *}" >/dev/null; then
	# shellcheck disable=SC2086 # $CXX may carry a wrapper or flags
	build "ivshmem.h as C++11 ($cxx -std=c++11 -pedantic -Werror -Wall -Wextra)" \
		$cxx -std=c++11 -pedantic -Werror -Wall -Wextra \
		-x c++ "$tmp/use.cc" -x none
else
	echo "skip ivshmem.h as C++11: no C++ compiler ($cxx not found)"
fi

if [ $failed -gt 0 ]; then
	echo "$failed check(s) failed"
	exit 1
fi
echo "all ABI checks passed"
exit 0
