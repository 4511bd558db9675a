#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The man pages as built: lint-clean, and in step with the programs.
#  - mandoc -Tlint -W style has nothing to say about any of the pages
#    (nor groff, when installed), and no @PLACEHOLDER@ is left;
#  - references to our own pages name the right section, and every
#    citation of an ivshmem-protocol(7) rule names a rule it has;
#  - every option `ivshmem-server --help` lists has an entry in
#    ivshmem-server(8)'s OPTIONS, and every entry there is in --help, with
#    the same short/long pairs; the same for `ivshmem-ctl --help` and the
#    "Global options" of ivshmem-ctl(1), and for each command's --help and
#    the "Options of COMMAND" subsections;
#  - the examples in libivshmem(3) compile (and link) against the
#    library, when the library and a compiler are given.
#
# Usage: man-test.sh BUILD_ROOT SOURCE_ROOT [LIBIVSHMEM_SO CC [CC ARGS...]]

set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_ROOT SOURCE_ROOT [LIBIVSHMEM_SO CC [CC ARGS...]]" >&2
	exit 2
fi
build=$1
src=$2
shift 2
so=
cc=()
if [ $# -ge 2 ]; then
	so=$1
	shift
	cc=("$@")
fi
man=$build/man
server=$build/server/ivshmem-server
ctl=$build/tools/ivshmem-ctl
pages=(ivshmem-server.8 ivshmem-ctl.1 libivshmem.3 ivshmem-flat.7 ivshmem-protocol.7
       ivshmem-channel.7)

have_mandoc=1
if ! command -v mandoc >/dev/null; then
	echo "skip lint: mandoc not found (apt-get install mandoc)"
	have_mandoc=0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/man-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
ok() {
	echo "ok   $*"
}

# ---- lint ------------------------------------------------------------------

for page in "${pages[@]}"; do
	f=$man/$page
	if [ ! -f "$f" ]; then
		fail "$page was not generated ($f)"
		continue
	fi
	if [ $have_mandoc = 1 ]; then
		mandoc -Tlint -W style "$f" >"$tmp/lint" 2>&1
		if [ -s "$tmp/lint" ]; then
			fail "mandoc -Tlint -W style $page:"
			sed "s|^mandoc: $f:|     $page:|" "$tmp/lint"
		else
			ok "mandoc -Tlint -W style $page"
		fi
	fi
	if command -v groff >/dev/null; then
		groff -man -Tutf8 -z "$f" >"$tmp/groff" 2>&1
		if [ -s "$tmp/groff" ]; then
			fail "groff -man -z $page:"
			sed 's/^/     | /' "$tmp/groff"
		fi
	fi
	if grep -n '@[A-Za-z_]*@' "$f" >"$tmp/left"; then
		fail "$page has placeholders left:"
		sed 's/^/     | /' "$tmp/left"
	fi
	# .BR ivshmem-ctl (1) and the like: our own pages, right section.
	sed 's/\\-/-/g' "$f" |
		grep -oE '\<(ivshmem-server|ivshmem-ctl|ivshmem-flat|libivshmem) ?\([0-9][a-z]*\)' |
		tr '()' '  ' | sort -u | while read -r name sec; do
			case " ${pages[*]} " in
			*" $name.$sec "*) ;;
			*) echo "$name($sec)" ;;
			esac
		done >"$tmp/xref"
	if [ -s "$tmp/xref" ]; then
		fail "$page refers to pages that do not exist: $(paste -sd' ' "$tmp/xref")"
	fi
done

# ---- options: --help against the man page ----------------------------------

# man_tags PAGE: "SUBSECTION<TAB>OPTIONS" for each tag of a .TP/.TQ/.IP
# entry in the OPTIONS section that names options (normalized: "-h
# --help"), SUBSECTION the title of the .SS it is under ("" before any).
man_tags() {
	awk '
	function norm(t) {
		gsub(/\\f(\[[^]]*\]|\(..|.)/, "", t)
		gsub(/\\-/, "-", t)
		gsub(/\\&/, "", t)
		gsub(/"/, " ", t)
		return t
	}
	function opts(t,   n, w, i, out) {
		n = split(norm(t), w, /[[:space:],]+/)
		out = ""
		for (i = 1; i <= n; i++) {
			if (match(w[i], /^--[A-Za-z0-9][A-Za-z0-9-]*/))
				out = out " " substr(w[i], 1, RLENGTH)
			else if (w[i] ~ /^-[A-Za-z0-9]([=[].*)?$/)
				out = out " " substr(w[i], 1, 2)
		}
		return substr(out, 2)
	}
	function emit(t,   o) {
		o = opts(t)
		if (o != "")
			print sub_ "\t" o
	}
	/^\.SH/ {
		t = $0; sub(/^\.SH[[:space:]]+/, "", t); gsub(/"/, "", t)
		in_ = (t == "OPTIONS"); sub_ = ""; tag = 0; next
	}
	!in_ { next }
	/^\.SS/ {
		sub_ = $0; sub(/^\.SS[[:space:]]+/, "", sub_); gsub(/"/, "", sub_)
		tag = 0; next
	}
	tag { tag = 0; emit($0); next }
	/^\.(TP|TQ)([[:space:]]|$)/ { tag = 1; next }
	/^\.IP[[:space:]]/ {
		t = $0; sub(/^\.IP[[:space:]]+/, "", t)
		if (t ~ /^"/) { sub(/^"/, "", t); sub(/".*/, "", t) }
		else sub(/[[:space:]].*/, "", t)
		emit(t)
	}
	' "$1"
}

# help_opts: the option lines of a --help text on stdin ("  -h, --help
# text" or "      --version  text"), one "-h --help" line each.
help_opts() {
	awk '
	/^[[:space:]]+--?[A-Za-z0-9]/ {
		spec = $0; sub(/^[[:space:]]+/, "", spec); sub(/  .*/, "", spec)
		n = split(spec, w, /[[:space:],]+/)
		out = ""
		for (i = 1; i <= n; i++) {
			if (match(w[i], /^--[A-Za-z0-9][A-Za-z0-9-]*/))
				out = out " " substr(w[i], 1, RLENGTH)
			else if (w[i] ~ /^-[A-Za-z0-9]([=[].*)?$/)
				out = out " " substr(w[i], 1, 2)
		}
		if (out != "")
			print substr(out, 2)
	}'
}

# block TITLE: the lines of stdin after the one starting with TITLE, up
# to the next empty line.
block() {
	awk -v t="$1" 'index($0, t) == 1 { on = 1; next } on && /^$/ { exit } on'
}

# flat FILE: one option per line, sorted.
flat() {
	tr ' ' '\n' <"$1" | sed '/^$/d' | sort -u
}

# compare NAME HELP_ENTRIES MAN_ENTRIES PAGE WHERE: both directions, and
# the short/long pairs of --help.
compare() {
	local name=$1 help=$2 page_entries=$3 page=$4 where=$5 o entry bad=0
	flat "$help" >"$help.flat"
	flat "$page_entries" >"$page_entries.flat"
	for o in $(comm -23 "$help.flat" "$page_entries.flat"); do
		fail "$name lists $o; $page does not document it in $where"
		bad=1
	done
	for o in $(comm -13 "$help.flat" "$page_entries.flat"); do
		fail "$page documents $o in $where; $name does not list it"
		bad=1
	done
	# "-n --vectors" in --help: one entry of the page has both.
	while read -r entry; do
		[ "${entry// /}" = "$entry" ] && continue
		if ! awk -v e="$entry" '
			BEGIN { n = split(e, want, " ") }
			{ delete have; for (i = 1; i <= NF; i++) have[$i] = 1
			  for (i = 1; i <= n; i++) if (!(want[i] in have)) next
			  found = 1; exit }
			END { exit !found }' "$page_entries"; then
			fail "$name pairs ${entry// / with }; $page ($where) does not"
			bad=1
		fi
	done <"$help"
	[ $bad = 0 ] && ok "$name and $page $where agree ($(wc -l <"$help.flat") options)"
}

if [ ! -x "$server" ] || [ ! -x "$ctl" ]; then
	fail "$server or $ctl not built"
else
	# ivshmem-server: --help against OPTIONS.
	if ! "$server" --help >"$tmp/server.help" 2>&1; then
		fail "ivshmem-server --help failed"
	fi
	help_opts <"$tmp/server.help" >"$tmp/server.h"
	man_tags "$man/ivshmem-server.8" | cut -f2 >"$tmp/server.m"
	# At least the options QEMU's server has, on both sides.
	if [ "$(wc -l <"$tmp/server.h")" -lt 9 ] ||
	   [ "$(wc -l <"$tmp/server.m")" -lt 9 ]; then
		fail "ivshmem-server: too few options parsed from --help or OPTIONS"
	fi
	compare "ivshmem-server --help" "$tmp/server.h" "$tmp/server.m" \
		ivshmem-server.8 OPTIONS

	# ivshmem-ctl: global options.
	if ! "$ctl" --help >"$tmp/ctl.help" 2>&1; then
		fail "ivshmem-ctl --help failed"
	fi
	block "Global options" <"$tmp/ctl.help" | help_opts >"$tmp/ctl.h"
	man_tags "$man/ivshmem-ctl.1" >"$tmp/ctl.tags"
	awk -F'\t' '$1 == "Global options" { print $2 }' "$tmp/ctl.tags" \
		>"$tmp/ctl.m"
	if [ ! -s "$tmp/ctl.h" ]; then
		fail "ivshmem-ctl --help has no \"Global options\" block"
	fi
	compare "ivshmem-ctl --help" "$tmp/ctl.h" "$tmp/ctl.m" \
		ivshmem-ctl.1 "OPTIONS, Global options"

	# Each command's own options (the global ones are checked above): in
	# an "Options of ..." subsection that names it; each option there in
	# the --help of a command it names.
	flat "$tmp/ctl.h" >"$tmp/global"
	commands=$(block "Commands:" <"$tmp/ctl.help" |
		awk '$1 ~ /^[a-z-]+$/ && $1 != "help" { print $1 }')
	for cmd in $commands; do
		if ! "$ctl" "$cmd" --help >"$tmp/cmd.help" 2>&1; then
			fail "ivshmem-ctl $cmd --help failed"
			continue
		fi
		help_opts <"$tmp/cmd.help" | tr ' ' '\n' | sort -u >"$tmp/cmd.$cmd"
		comm -23 "$tmp/cmd.$cmd" "$tmp/global" >"$tmp/own.$cmd"
		awk -F'\t' -v c="$cmd" '
			$1 == "Global options" { print $2; next }
			$1 ~ /^Options of / {
				n = split(substr($1, 12), w, /[^a-z-]+/)
				for (i = 1; i <= n; i++) if (w[i] == c) print $2
			}' "$tmp/ctl.tags" | tr ' ' '\n' | sort -u >"$tmp/man.$cmd"
		bad=0
		for o in $(comm -23 "$tmp/own.$cmd" "$tmp/man.$cmd"); do
			fail "ivshmem-ctl $cmd --help lists $o; ivshmem-ctl.1" \
				"documents it neither in Global options nor in" \
				"an \"Options of\" subsection naming $cmd"
			bad=1
		done
		[ $bad = 0 ] && ok "ivshmem-ctl $cmd --help: its" \
			"$(wc -l <"$tmp/own.$cmd") own options in ivshmem-ctl.1"
	done
	while IFS=$'\t' read -r title options; do
		case $title in "Options of "*) ;; *) continue ;; esac
		named=""
		for w in $(echo "${title#Options of }" | tr -c 'a-z-\n' ' '); do
			if [ -f "$tmp/cmd.$w" ]; then
				named="$named $w"
			elif [ "$w" != and ]; then
				fail "ivshmem-ctl.1 \"$title\": $w is not a command of ivshmem-ctl --help"
			fi
		done
		for o in $options; do
			found=0
			for w in $named; do
				grep -qx -- "$o" "$tmp/cmd.$w" && found=1
			done
			if [ $found = 0 ]; then
				fail "ivshmem-ctl.1 \"$title\" documents $o; no --help of ivshmem-ctl$named lists it"
			fi
		done
	done <"$tmp/ctl.tags"
fi

# ---- protocol citations ----------------------------------------------------

# Every "ivshmem-protocol(7) rule N" (or "rules N, M and K") in the code,
# the tests and the pages, and every "rule N" inside ivshmem-protocol(7),
# names a rule the page has (an ".IP N." paragraph).
proto=$src/man/ivshmem-protocol.7.in
rules=" $(sed -n 's/^\.IP \([0-9][0-9]*\)\. .*/\1/p' "$proto" | paste -sd' ') "
if [ "$rules" = "  " ]; then
	fail "ivshmem-protocol(7): no numbered rules found"
fi
ncites=0
while IFS= read -r f; do
	# Comments wrap: read the file as one line, without comment marks.
	tr '\n\t*/' '    ' <"$f" | tr -s ' ' |
		grep -oE 'ivshmem-protocol\(7\),? rules? [0-9]+((, | and )[0-9]+)*' |
		grep -oE '[0-9]+$|[0-9]+[, ]' | tr -dc '0-9\n' >"$tmp/cites"
	if [ "$f" = "$proto" ]; then
		grep -oE 'rules? [0-9]+((, | and )[0-9]+)*' "$f" |
			grep -oE '[0-9]+' >>"$tmp/cites"
	fi
	while read -r n; do
		[ -n "$n" ] || continue
		ncites=$((ncites + 1))
		case "$rules" in
		*" $n "*) ;;
		*) fail "${f#"$src"/} cites ivshmem-protocol(7) rule $n, which the page does not have" ;;
		esac
	done <"$tmp/cites"
done < <(find "$src/libivshmem" "$src/server" "$src/tools" "$src/common" \
	"$src/device-core" "$src/tests" "$src/man" -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.in' -o -name '*.sh' \) |
	sort)
if [ $ncites -lt 10 ]; then
	fail "only $ncites protocol citations found: is the pattern still right?"
else
	ok "$ncites protocol citations name rules of ivshmem-protocol(7)"
fi

# ---- the examples in libivshmem(3) ---------------------------------------

if [ -n "$so" ] && [ -f "$man/libivshmem.3" ]; then
	# Each .EX block of EXAMPLES that is a C program, unescaped.
	awk -v dir="$tmp" '
		/^\.SH/ { ex = ($0 ~ /^\.SH "?EXAMPLES"?$/); next }
		ex && /^\.EX/ { on = 1; n++; f = dir "/example" n ".c"; next }
		ex && /^\.EE/ { on = 0; next }
		on {
			gsub(/\\-/, "-"); gsub(/\\e/, "\\"); gsub(/\\\(aq/, "\047")
			gsub(/\\\(dq/, "\""); gsub(/\\&/, "")
			print > f
		}' "$man/libivshmem.3"
	mkdir -p "$tmp/inc/libivshmem"
	cp "$src/libivshmem/ivshmem.h" "$tmp/inc/libivshmem/"
	n=0
	for ex in "$tmp"/example*.c; do
		[ -e "$ex" ] || continue
		grep -q '^int main' "$ex" || continue
		n=$((n + 1))
		if "${cc[@]}" -std=c99 -D_POSIX_C_SOURCE=200809L -pedantic \
				-Wall -Wextra -Wno-unused-parameter -Werror \
				-I"$tmp/inc" -o "${ex%.c}" "$ex" "$so" \
				>"$tmp/cc.log" 2>&1; then
			ok "libivshmem.3 example $n compiles and links"
		else
			fail "libivshmem.3 example $n does not compile:"
			sed 's/^/     | /' "$tmp/cc.log"
		fi
	done
	[ $n = 0 ] && fail "libivshmem.3 has no example program"
fi

if [ $failed -gt 0 ]; then
	echo "$failed check(s) failed"
	exit 1
fi
if [ $have_mandoc = 0 ]; then
	echo "SKIP: the other checks passed, but mandoc is needed for the lint"
	exit 77
fi
echo "all man page checks passed"
exit 0
