#!/bin/bash
# SPDX-License-Identifier: MIT
#
# With -Dtests=auto and Check missing, setup must leave the tests out
# instead of failing at compile time. A copy of the source tree is
# configured with a pkg-config that reports check as missing (and no
# cmake, so meson's cmake fallback cannot find it either), then built;
# both must succeed and no test binary may be built.
#
# Usage: no-check-test.sh SOURCE_ROOT

set -u
src=$1
meson=${MESON:-meson}
d=$(mktemp -d "${TMPDIR:-/tmp}/no-check-test.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT

# The sources only: not .git, not a build directory (one holding
# meson-private), whatever its name.
mkdir "$d/src" || exit 1
for e in "$src"/* "$src"/.[!.]*; do
	[ -e "$e" ] || continue
	[ "${e##*/}" = .git ] && continue
	[ -d "$e/meson-private" ] && continue
	cp -a "$e" "$d/src/" || exit 1
done
mkdir "$d/bin"
real=$(command -v pkg-config) || { echo "no pkg-config in PATH"; exit 77; }
cat > "$d/bin/pkg-config" <<EOS
#!/bin/sh
for a in "\$@"; do case "\$a" in check|check\ *) exit 1;; esac; done
exec "$real" "\$@"
EOS
chmod +x "$d/bin/pkg-config"
printf "[binaries]\ncmake = 'false'\n" > "$d/native.ini"

if ! PKG_CONFIG="$d/bin/pkg-config" "$meson" setup "$d/b" "$d/src" \
		--native-file "$d/native.ini" -Dtests=auto >"$d/setup.log" 2>&1; then
	cat "$d/setup.log"
	echo "FAIL: setup without Check failed"
	exit 1
fi
if ! grep -q 'Run-time dependency check found: NO' "$d/setup.log"; then
	cat "$d/setup.log"
	echo "FAIL: Check was still found"
	exit 1
fi
if ! ninja -C "$d/b" >"$d/build.log" 2>&1; then
	cat "$d/build.log"
	echo "FAIL: build without Check failed"
	exit 1
fi
if [ -e "$d/b/tests" ]; then
	echo "FAIL: test binaries were built without Check:"
	ls "$d/b/tests"
	exit 1
fi
echo "PASS: configured and built without Check, no tests"
