#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The ivshmem-flat core and the channel core (libivshmem/ivchan.c) must
# build without a C library: firmware and bare
# test rigs link it with nothing else, so a call the compiler emits for
# us (memset for a struct initializer, __aeabi_uidiv for a division on a
# Cortex-M0, __builtin_ctz through libgcc) breaks them even though every
# hosted build passes. Each check links with -nostdlib and fails on any
# undefined symbol. The headers must also stand alone, in C99 and in C++
# (an emulator may be either).
#
# Usage: flat-freestanding.sh DEVICE_CORE_DIR LIBIVSHMEM_DIR CC [CC ARGS...]
#   CC is the host compiler command (meson's cc.cmd_array(), so a ccache
#   wrapper is fine). The C++ compiler is $CXX or c++/g++ from PATH and
#   the Arm one $ARM_CC or arm-none-eabi-gcc; either is skipped (said so)
#   when absent.

set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 DEVICE_CORE_DIR LIBIVSHMEM_DIR CC [CC ARGS...]" >&2
	exit 2
fi
core_dir=$1
lib_dir=$2
shift 2
cc=("$@")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flat-freestanding.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
skipped=0

# run NAME CMD...: run a check, print its result and, on failure, the
# compiler's output.
run() {
	local name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok   $name"
		passed=$((passed + 1))
		return 0
	fi
	echo "FAIL $name"
	echo "     command: $*"
	sed 's/^/     | /' "$tmp/out"
	failed=$((failed + 1))
	return 1
}

# What a failed freestanding link wanted, by name.
explain_undefined() {
	local obj=$1 nm=$2 syms
	syms=$("$nm" -u "$obj" 2>/dev/null | awk '{ print $NF }' | sort -u |
	       tr '\n' ' ')
	if [ -n "$syms" ]; then
		echo "     the core calls outside itself: $syms"
		echo "     (a freestanding build has no C library or libgcc)"
	fi
}

std_flags=(-std=c99 -pedantic -Werror -Wall -Wextra -ffreestanding)

# The freestanding sources and the function each bare link starts at:
# the ivshmem-flat core and the channel core (ivshmem-channel(7)).
sources=("$core_dir/ivshmem-flat.c:ivshmem_flat_init"
	 "$lib_dir/ivchan.c:ivchan_attach")

# Host: a shared object with -z defs refuses any undefined symbol.
# -fno-stack-protector: some toolchains (Ubuntu's) default to
# -fstack-protector, whose __stack_chk_fail is theirs, not the core's.
for entry in "${sources[@]}"; do
	file=${entry%%:*}
	base=$(basename "$file")
	for opt in -O0 -O2 -Os; do
		so="$tmp/core$opt.so"
		if ! run "host $opt: $base links with -nostdlib -z defs" \
			"${cc[@]}" "${std_flags[@]}" -fno-stack-protector \
			"$opt" -nostdlib -shared -fPIC -Wl,-z,defs -o "$so" \
			"$file"; then
			"${cc[@]}" "${std_flags[@]}" -fno-stack-protector \
				"$opt" -fPIC -c -o "$tmp/core.o" "$file" \
				2>/dev/null &&
				explain_undefined "$tmp/core.o" nm
		fi
	done
done

# Arm Cortex-M: a bare executable whose entry is the core's first
# function; every function is kept (no --gc-sections), so every one must
# link alone. The Cortex-M0 -Os .text of each file is reported.
arm_cc=${ARM_CC:-arm-none-eabi-gcc}
if command -v "$arm_cc" >/dev/null 2>&1; then
	arm_nm=$(command -v "${arm_cc%gcc}nm" || echo nm)
	arm_size=$(command -v "${arm_cc%gcc}size" || true)
	for entry in "${sources[@]}"; do
		file=${entry%%:*}
		start=${entry##*:}
		base=$(basename "$file")
		for cpu in cortex-m0 cortex-m3; do
			for opt in -O0 -O2 -Os; do
				elf="$tmp/core-$cpu$opt.elf"
				if ! run "arm $cpu $opt: $base links with -nostdlib" \
					"$arm_cc" "${std_flags[@]}" \
					"-mcpu=$cpu" -mthumb "$opt" -nostdlib \
					-Wl,-e,"$start" -o "$elf" "$file"; then
					"$arm_cc" "${std_flags[@]}" \
						"-mcpu=$cpu" -mthumb "$opt" -c \
						-o "$tmp/core.o" "$file" \
						2>/dev/null &&
						explain_undefined "$tmp/core.o" \
							"$arm_nm"
				fi
			done
		done
		if [ -n "$arm_size" ] &&
		   "$arm_cc" "${std_flags[@]}" -mcpu=cortex-m0 -mthumb -Os \
			-c -o "$tmp/size.o" "$file" 2>/dev/null; then
			echo "size $base, cortex-m0 -Os: $("$arm_size" \
				"$tmp/size.o" | awk 'NR == 2 { print $1 }') bytes of .text"
		fi
	done
else
	echo "skip arm: $arm_cc not found (set ARM_CC)"
	skipped=$((skipped + 1))
fi

# Each header alone (twice: the include guard), as C99 and as C++11.
cxx=${CXX:-}
if [ -z "$cxx" ]; then
	cxx=$(command -v c++ || command -v g++ || true)
fi
for header in "$core_dir"/*.h "$lib_dir/ivchan.h"; do
	name=$(basename "$header")
	printf '#include "%s"\n#include "%s"\n' "$name" "$name" \
		>"$tmp/alone.c"
	cp "$tmp/alone.c" "$tmp/alone.cc"
	inc=(-I"$core_dir" -I"$lib_dir")
	run "$name alone: C99 -pedantic" \
		"${cc[@]}" -std=c99 -pedantic -Werror -Wall -Wextra \
		-fsyntax-only "${inc[@]}" "$tmp/alone.c"
	if [ "$name" = ivshmem-flat.h ] || [ "$name" = ivchan.h ]; then
		# A core's own header: the compiler's headers only, nothing
		# else (the include path holds only its own directory).
		run "$name alone: C99 -pedantic -ffreestanding" \
			"${cc[@]}" "${std_flags[@]}" -fsyntax-only \
			-I"$(dirname "$header")" "$tmp/alone.c"
	fi
	if [ -n "$cxx" ]; then
		run "$name alone: C++11 -pedantic" \
			"$cxx" -std=c++11 -pedantic -Werror -Wall -Wextra \
			-fsyntax-only "${inc[@]}" "$tmp/alone.cc"
	fi
done
if [ -z "$cxx" ]; then
	echo "skip C++: no c++ or g++ (set CXX)"
	skipped=$((skipped + 1))
fi

echo "flat-freestanding: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ]; then
	echo "flat-freestanding: FAILED: the core or a header does not build" \
	     "as above" >&2
	exit 1
fi
exit 0
