#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The tree builds and tests wherever it is and whatever is missing. A
# copy of the sources is made in a new directory of mode 0700 (as a
# checkout in root's home is), then:
#  - configured with a pkg-config that reports Check as missing (and no
#    cmake, so meson's cmake fallback cannot find it either) and
#    -Dtests=auto, and built: both succeed and no test binary is built;
#  - when run as root with user nobody, configured as usual, and the
#    tests that run programs as nobody (ctl, access) pass there, though
#    nobody cannot reach the build directory.
#
# Usage: checkout-test.sh SOURCE_ROOT

set -u
if [ $# -ne 1 ]; then
	echo "usage: $0 SOURCE_ROOT" >&2
	exit 2
fi
src=$1
meson=${MESON:-meson}
d=$(mktemp -d "${TMPDIR:-/tmp}/checkout-test.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
chmod 0700 "$d"

fail() {
	[ $# -gt 1 ] && cat "$2"
	echo "FAIL: $1"
	exit 1
}

# The sources only: not .git, not a build directory (one holding
# meson-private), whatever its name.
mkdir "$d/src" || exit 1
for e in "$src"/* "$src"/.[!.]*; do
	[ -e "$e" ] || continue
	[ "${e##*/}" = .git ] && continue
	[ -d "$e/meson-private" ] && continue
	cp -a "$e" "$d/src/" || exit 1
done

# ---- without Check ----------------------------------------------------------

mkdir "$d/bin"
real=$(command -v pkg-config) || { echo "no pkg-config in PATH"; exit 77; }
cat > "$d/bin/pkg-config" <<EOF
#!/bin/sh
for a in "\$@"; do case "\$a" in check|check\ *) exit 1;; esac; done
exec "$real" "\$@"
EOF
chmod +x "$d/bin/pkg-config"
printf "[binaries]\ncmake = 'false'\n" > "$d/native.ini"

PKG_CONFIG="$d/bin/pkg-config" "$meson" setup "$d/nocheck" "$d/src" \
	--native-file "$d/native.ini" -Dtests=auto >"$d/setup.log" 2>&1 ||
	fail "setup without Check failed" "$d/setup.log"
grep -q 'Run-time dependency check found: NO' "$d/setup.log" ||
	fail "Check was still found" "$d/setup.log"
ninja -C "$d/nocheck" >"$d/build.log" 2>&1 ||
	fail "build without Check failed" "$d/build.log"
if [ -e "$d/nocheck/tests" ]; then
	ls "$d/nocheck/tests"
	fail "test binaries were built without Check"
fi
echo "ok   configured and built without Check, no tests"
rm -rf "$d/nocheck"

# ---- in a directory nobody can reach ---------------------------------------

if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	echo "skip the 0700 checkout: needs root and user nobody"
	exit 0
fi
"$meson" setup "$d/b" "$d/src" >"$d/setup.log" 2>&1 ||
	fail "setup failed" "$d/setup.log"
ninja -C "$d/b" tests/test-ctl tests/test-access server/ivshmem-server \
	tools/ivshmem-ctl >"$d/build.log" 2>&1 ||
	fail "build failed" "$d/build.log"
if su -s /bin/sh nobody -c "test -x '$d/b/tools/ivshmem-ctl'" 2>/dev/null; then
	echo "skip the 0700 checkout: nobody can still reach $d"
	exit 0
fi
"$meson" test -C "$d/b" --no-rebuild --print-errorlogs ctl access \
	>"$d/test.log" 2>&1 ||
	fail "ctl and access fail in a checkout nobody can reach" "$d/test.log"
echo "ok   ctl and access pass in a checkout nobody can reach"
