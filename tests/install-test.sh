#!/bin/bash
# SPDX-License-Identifier: MIT
#
# `meson install` must produce what a distribution package ships, and a
# program must build and run against that tree alone. The build is
# installed into a temporary DESTDIR; every file is checked for where it
# lands (the library with its soname links, the one public header, the
# .pc file, both programs, the four man pages with the version filled
# in, and the systemd units when the source tree has them); then a small
# program is compiled with nothing but `pkg-config libivshmem` pointing
# into DESTDIR (the source tree is never on its include path), linked,
# and run against the installed library: it creates a memfd, listens,
# starts a server, connects a peer, drives both with poll() until the
# peer is ready as ID 0, rings it and shares a few bytes.
#
# Usage: install-test.sh BUILD_ROOT SOURCE_ROOT [CC [CC ARGS...]]
#   CC is the C compiler command (meson's cc.cmd_array()); cc from PATH
#   without it. meson is $MESON or meson from PATH.

set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_ROOT SOURCE_ROOT [CC [CC ARGS...]]" >&2
	exit 2
fi
build=$(realpath "$1")
src=$(realpath "$2")
shift 2
if [ $# -gt 0 ]; then
	cc=("$@")
else
	cc=(cc)
fi
meson=${MESON:-meson}

for tool in "$meson" pkg-config readelf ldd python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not found"
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/install-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

failed=0
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
ok() {
	echo "ok   $*"
}

# ---- install -------------------------------------------------------------

if ! "$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet \
		>"$tmp/install.log" 2>&1; then
	echo "FAIL meson install -C $build --destdir $dest"
	sed 's/^/     | /' "$tmp/install.log"
	exit 1
fi
ok "meson install --destdir"

# Where the build says things go (prefix and the directories relative to
# it, as configured: libdir is lib/<triplet> on Debian).
"$meson" introspect "$build" --buildoptions --projectinfo >"$tmp/intro.json" ||
	exit 2
{
	read -r version && read -r prefix && read -r bindir &&
		read -r sbindir && read -r libdir && read -r includedir &&
		read -r mandir && read -r systemd_opt
} < <(python3 - "$tmp/intro.json" <<'EOF'
import json, os, sys

intro = json.load(open(sys.argv[1]))
opts = {o["name"]: o["value"] for o in intro["buildoptions"]}
prefix = opts["prefix"]
print(intro["projectinfo"]["version"])
print(prefix)
for d in ("bindir", "sbindir", "libdir", "includedir", "mandir"):
	print(os.path.join(prefix, opts[d]))
print(opts.get("systemd", "disabled"))
EOF
)
if [ -z "${systemd_opt:-}" ]; then
	echo "FAIL meson introspect $build: no prefix or directories"
	exit 1
fi
echo "     prefix $prefix, version $version"

# ---- the files -----------------------------------------------------------

lib=$dest$libdir
real=$(find "$lib" -maxdepth 1 -type f -name 'libivshmem.so.*' | head -n 1)
if [ -z "$real" ]; then
	fail "no libivshmem.so.* file in $libdir"
else
	soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	if [ "$soname" = libivshmem.so.0 ]; then
		ok "$libdir/$(basename "$real") (SONAME $soname)"
	else
		fail "$libdir/$(basename "$real") has SONAME '$soname', not libivshmem.so.0"
	fi
	for link in libivshmem.so.0 libivshmem.so; do
		if [ ! -L "$lib/$link" ]; then
			fail "$libdir/$link is not a symlink"
		elif [ "$(realpath "$lib/$link")" != "$(realpath "$real")" ]; then
			fail "$libdir/$link points to $(readlink "$lib/$link"), not to $(basename "$real")"
		else
			ok "$libdir/$link -> $(readlink "$lib/$link")"
		fi
	done
fi
if find "$dest" -name '*.a' -o -name '*.la' | grep -q .; then
	fail "static or libtool archives installed: $(find "$dest" -name '*.a' -o -name '*.la')"
fi

hdr=$dest$includedir/libivshmem-0/libivshmem/ivshmem.h
if [ ! -f "$hdr" ]; then
	fail "$includedir/libivshmem-0/libivshmem/ivshmem.h missing"
elif ! cmp -s "$hdr" "$src/libivshmem/ivshmem.h"; then
	fail "installed ivshmem.h differs from libivshmem/ivshmem.h"
else
	ok "$includedir/libivshmem-0/libivshmem/ivshmem.h"
fi
# One public header, nothing private next to it.
extra=$(find "$dest$includedir" -type f ! -path "$hdr")
if [ -n "$extra" ]; then
	fail "headers besides ivshmem.h installed: ${extra//$dest/}"
fi

pc=$lib/pkgconfig/libivshmem.pc
if [ -f "$pc" ]; then
	ok "$libdir/pkgconfig/libivshmem.pc"
else
	fail "$libdir/pkgconfig/libivshmem.pc missing"
fi

for prog in "$sbindir/ivshmem-server" "$bindir/ivshmem-ctl"; do
	if [ ! -x "$dest$prog" ]; then
		fail "$prog missing or not executable"
		continue
	fi
	# Installed programs lose the build's RUNPATH: they must run
	# against the installed library.
	out=$(LD_LIBRARY_PATH=$lib "$dest$prog" --version 2>&1)
	if [[ $out == *"$version"* ]]; then
		ok "$prog (--version: $out)"
	else
		fail "$prog --version said '$out', not version $version"
	fi
	needed=$(readelf -d "$dest$prog" |
		sed -n 's/.*(NEEDED).*\[\(libivshmem[^]]*\)\]/\1/p')
	if [ -n "$needed" ]; then
		where=$(LD_LIBRARY_PATH=$lib ldd "$dest$prog" |
			awk -v n="$needed" '$1 == n && $2 == "=>" { print $3 }')
		if [ "$(realpath "$where" 2>/dev/null)" != "$(realpath "$real")" ]; then
			fail "$prog: NEEDED $needed resolves to '$where', not the installed library"
		fi
	fi
done

for page in man8/ivshmem-server.8 man1/ivshmem-ctl.1 man3/libivshmem.3 \
		man7/ivshmem-flat.7 man7/ivshmem-protocol.7 man7/ivshmem-channel.7; do
	f=$dest$mandir/$page
	if [ ! -f "$f" ]; then
		fail "$mandir/$page missing"
	elif grep -n '@[A-Za-z_]*@' "$f" >"$tmp/left"; then
		fail "$mandir/$page has placeholders left: $(head -n 3 "$tmp/left" | tr '\n' ' ')"
	elif ! head -n 1 "$f" |
			grep -q "^\.TH [^ ]* [0-9][a-z]* \"[^\"]\+\" \"libivshmem $version\""; then
		fail "$mandir/$page: .TH line lacks the date or \"libivshmem $version\": $(head -n 1 "$f")"
	else
		ok "$mandir/$page ($(head -n 1 "$f"))"
	fi
done

# The channel core for firmware: installed as source, and it builds alone
# with no C library (what a firmware build does with it).
core=$dest$(dirname "$mandir")/libivshmem
if [ ! -f "$core/ivchan.c" ] || [ ! -f "$core/ivchan.h" ]; then
	fail "$(dirname "$mandir")/libivshmem/ivchan.c and ivchan.h missing"
elif ! "${cc[@]}" -std=c99 -pedantic -Werror -Wall -Wextra -ffreestanding \
		-fno-stack-protector -nostdlib -shared -fPIC -Wl,-z,defs \
		-o "$tmp/ivchan.so" "$core/ivchan.c" >"$tmp/ivchan.log" 2>&1; then
	fail "the installed ivchan.c does not build freestanding:"
	sed 's/^/     | /' "$tmp/ivchan.log"
else
	ok "$(dirname "$mandir")/libivshmem/ivchan.c builds with -nostdlib"
fi

# systemd units, once the source tree has them: installed when the build
# has systemd support (-Dsystemd=enabled, or auto with libsystemd there),
# placeholders filled, ExecStart naming the installed server, and the
# man pages in Documentation= installed.
if [ -d "$src/systemd" ] && [ -n "$(find "$src/systemd" -maxdepth 1 \
		\( -name '*.service*' -o -name '*.socket*' \))" ]; then
	case $systemd_opt in
	enabled) want_units=1 ;;
	disabled) want_units=0 ;;
	*)
		if pkg-config --exists libsystemd; then
			want_units=1
		else
			want_units=0
		fi
		;;
	esac
	for unit in "$src"/systemd/*.service "$src"/systemd/*.socket \
			"$src"/systemd/*.service.in "$src"/systemd/*.socket.in; do
		[ -e "$unit" ] || continue
		name=$(basename "$unit" .in)
		f=$(find "$dest" -name "$name" | head -n 1)
		if [ "$want_units" = 0 ]; then
			if [ -n "$f" ]; then
				fail "${f#"$dest"} installed by a build without systemd support"
			else
				echo "skip $name: built without systemd support (-Dsystemd=$systemd_opt)"
			fi
			continue
		fi
		if [ -z "$f" ]; then
			fail "systemd unit $name not installed"
			continue
		fi
		bad=0
		if grep -q '@[A-Za-z_]*@' "$f"; then
			fail "${f#"$dest"} has placeholders left"
			bad=1
		fi
		while read -r exe; do
			if [ ! -x "$dest$exe" ]; then
				fail "${f#"$dest"}: ExecStart runs $exe, not installed"
				bad=1
			fi
		done < <(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$f")
		while read -r page sec; do
			if [ ! -f "$dest$mandir/man$sec/$page.$sec" ]; then
				fail "${f#"$dest"}: Documentation=man:$page($sec) not installed"
				bad=1
			fi
		done < <(sed -n 's/^Documentation=//p' "$f" | tr ' ' '\n' |
			 sed -n 's/^man:\([^(]*\)(\([0-9a-z]*\))$/\1 \2/p')
		[ $bad = 0 ] && ok "${f#"$dest"}"
	done
fi

# ---- a program built against the installed tree only --------------------

cat >"$tmp/prog.c" <<'EOF'
/* Server and peer in one process, on one poll() loop. */
#define _GNU_SOURCE             /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libivshmem/ivshmem.h>

#define SHM_SIZE 65536
#define MAXW 16

static struct pollfd watched[MAXW];
static int nwatched, joined_id = -1, ready;
static uint64_t doorbells;

static void srv_watch(void *user, int fd, int events)
{
	int i;

	for (i = 0; i < nwatched && watched[i].fd != fd; i++)
		;
	if (events < 0) {
		if (i < nwatched)
			watched[i] = watched[--nwatched];
		return;
	}
	if (i == nwatched) {
		if (nwatched == MAXW)
			return;
		nwatched++;
	}
	watched[i].fd = fd;
	watched[i].events = (short)events;
}

static void srv_event(void *user, const struct ivshmem_server_event *ev)
{
	if (ev->type == IVSHMEM_EVENT_PEER_JOINED)
		joined_id = ev->id;
}

static void peer_ready(void *user, struct ivshmem_peer *peer)
{
	ready = 1;
}

static void peer_doorbell(void *user, struct ivshmem_peer *peer,
			  unsigned vector, uint64_t count)
{
	doorbells += count;
}

#define CHECK(call) do { \
	int r_ = (call); \
	if (r_ < 0) { \
		printf("FAIL %s: %s\n", #call, strerror(-r_)); \
		return 1; \
	} \
} while (0)

/* Poll the server's fds and the peer's until done() or 10 s. */
static int run(struct ivshmem_server *srv, struct ivshmem_peer *peer,
	       int (*done)(void))
{
	time_t end = time(NULL) + 10;

	while (!done()) {
		struct pollfd pfd[MAXW + 1];
		int n = 0, i;

		if (time(NULL) > end)
			return -ETIMEDOUT;
		/* A copy: dispatching may change what is watched. Events 0
		 * means keep the fd but do not poll it. */
		for (i = 0; i < nwatched; i++)
			if (watched[i].events)
				pfd[n++] = watched[i];
		pfd[n].fd = ivshmem_peer_get_fd(peer);
		pfd[n].events = POLLIN;
		if (poll(pfd, n + 1, 100) < 0)
			return -errno;
		for (i = 0; i < n; i++)
			if (pfd[i].revents)
				ivshmem_server_dispatch(srv, pfd[i].fd,
							pfd[i].revents);
		if (pfd[n].revents) {
			int r = ivshmem_peer_dispatch(peer);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int is_ready(void)
{
	return ready && joined_id >= 0;
}

static int rang(void)
{
	return doorbells > 0;
}

int main(int argc, char **argv)
{
	static const struct ivshmem_server_ops sops = {
		.watch = srv_watch,
		.event = srv_event,
	};
	static const struct ivshmem_peer_ops pops = {
		.ready = peer_ready,
		.doorbell = peer_doorbell,
	};
	struct ivshmem_server_config scfg = { .vectors = 1 };
	struct ivshmem_peer_config pcfg = { .vectors = 1,
					    .shm_size = SHM_SIZE };
	struct ivshmem_server *srv;
	struct ivshmem_peer *peer;
	char path[4096], buf[8];
	void *mem;
	uint64_t size;
	Dl_info info;

	if (argc != 2)
		return 2;
	if (dladdr((void *)ivshmem_version, &info) && info.dli_fname)
		printf("library %s\n", info.dli_fname);
	printf("version %s\n", ivshmem_version());
	snprintf(path, sizeof(path), "%s/sock", argv[1]);

	CHECK(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, SHM_SIZE,
			       &scfg.shm_fd, NULL));
	CHECK(ivshmem_socket_listen(path, &scfg.listen_fd));
	CHECK(ivshmem_server_new(&scfg, &sops, NULL, &srv));
	CHECK(ivshmem_peer_new(&pcfg, &pops, NULL, &peer));
	CHECK(ivshmem_peer_connect(peer, path));
	CHECK(run(srv, peer, is_ready));

	if (ivshmem_peer_get_state(peer) != IVSHMEM_PEER_READY ||
	    ivshmem_peer_get_id(peer) != 0 || joined_id != 0 ||
	    ivshmem_server_get_peer_count(srv) != 1) {
		printf("FAIL state %d, peer ID %d, server saw ID %d, %d peers\n",
		       ivshmem_peer_get_state(peer), ivshmem_peer_get_id(peer),
		       joined_id, ivshmem_server_get_peer_count(srv));
		return 1;
	}
	CHECK(ivshmem_peer_get_shm(peer, &mem, &size));
	if (size != SHM_SIZE) {
		printf("FAIL shared memory of %llu bytes\n",
		       (unsigned long long)size);
		return 1;
	}
	/* The peer's mapping and the server's fd are the same memory. */
	memcpy((char *)mem + 4096, "ivshmem", 8);
	if (pread(ivshmem_server_get_shm_fd(srv), buf, 8, 4096) != 8 ||
	    memcmp(buf, "ivshmem", 8) != 0) {
		printf("FAIL the server's shm fd does not see the peer's write\n");
		return 1;
	}
	CHECK(ivshmem_server_ring(srv, 0, 0));
	CHECK(run(srv, peer, rang));

	ivshmem_peer_free(peer);
	ivshmem_server_free(srv);
	unlink(path);
	printf("OK peer 0 ready, %llu doorbell\n",
	       (unsigned long long)doorbells);
	return 0;
}
EOF

# pkg-config sees only the installed .pc; the sysroot makes its paths
# point into DESTDIR.
pkgconf() {
	PKG_CONFIG_PATH='' PKG_CONFIG_LIBDIR=$lib/pkgconfig \
		PKG_CONFIG_SYSROOT_DIR=$dest pkg-config "$@"
}
if ! flags=$(pkgconf --cflags --libs libivshmem 2>&1); then
	fail "pkg-config --cflags --libs libivshmem: $flags"
	echo "$failed check(s) failed"
	exit 1
fi
ok "pkg-config --cflags --libs libivshmem: $flags"
modversion=$(pkgconf --modversion libivshmem)
[ "$modversion" = "$version" ] ||
	fail "pkg-config --modversion libivshmem is $modversion, not $version"
if [[ $flags == *"$src"* || $flags == *"$build"* ]]; then
	fail "pkg-config flags point outside DESTDIR: $flags"
fi

# shellcheck disable=SC2086 # flags are words
if ! "${cc[@]}" -std=gnu99 -Wall -Wextra -Werror -Wno-unused-parameter \
		${SANITIZE_FLAGS:-} \
		-o "$tmp/prog" "$tmp/prog.c" -MD -MF "$tmp/prog.d" $flags \
		>"$tmp/cc.log" 2>&1; then
	fail "building a program with pkg-config libivshmem"
	echo "     command: ${cc[*]} ... $tmp/prog.c $flags"
	sed 's/^/     | /' "$tmp/cc.log"
	echo "$failed check(s) failed"
	exit 1
fi
# The header the compiler read is the installed one.
used=$(tr ' \\' '\n\n' <"$tmp/prog.d" | grep 'libivshmem/ivshmem\.h$')
if [ "$(realpath "$used")" = "$(realpath "$hdr")" ]; then
	ok "program compiled with the installed header"
else
	fail "program compiled with '$used', not the installed header"
fi

needed=$(readelf -d "$tmp/prog" | sed -n 's/.*(NEEDED).*\[\(libivshmem.*\)\]/\1/p')
if [ "$needed" = libivshmem.so.0 ]; then
	ok "program NEEDED $needed"
else
	fail "program NEEDED '$needed', not libivshmem.so.0"
fi
if readelf -d "$tmp/prog" | grep -qE 'RPATH|RUNPATH'; then
	fail "program has an RPATH/RUNPATH: $(readelf -d "$tmp/prog" | grep -E 'RPATH|RUNPATH')"
fi
where=$(LD_LIBRARY_PATH=$lib ldd "$tmp/prog" |
	awk '$1 == "libivshmem.so.0" && $2 == "=>" { print $3 }')
if [ -n "$real" ] && [ "$(realpath "$where" 2>/dev/null)" = "$(realpath "$real")" ]; then
	ok "ldd: libivshmem.so.0 => $where"
else
	fail "ldd resolves libivshmem.so.0 to '$where', not the installed copy"
fi

mkdir "$tmp/run"
if ! LD_LIBRARY_PATH=$lib timeout 60 "$tmp/prog" "$tmp/run" \
		>"$tmp/prog.out" 2>&1; then
	fail "running the program"
	sed 's/^/     | /' "$tmp/prog.out"
else
	sed 's/^/     | /' "$tmp/prog.out"
	loaded=$(sed -n 's/^library //p' "$tmp/prog.out")
	if [ "$(realpath "$loaded" 2>/dev/null)" != "$(realpath "$real")" ]; then
		fail "the program loaded '$loaded', not the installed library"
	elif ! grep -qx "version $version" "$tmp/prog.out"; then
		fail "ivshmem_version() is not $version"
	elif ! grep -q '^OK' "$tmp/prog.out"; then
		fail "the program did not print OK"
	else
		ok "program against the installed library: server, peer ready as ID 0"
	fi
fi

if [ $failed -gt 0 ]; then
	echo "$failed check(s) failed"
	exit 1
fi
echo "all install checks passed"
exit 0
