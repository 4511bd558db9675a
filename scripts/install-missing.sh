# shellcheck shell=bash
# Sourced by the scripts in scripts/: install_missing PACKAGE... installs
# the Debian packages of the list that are not installed (apt-get, as
# root; otherwise it says what to run and exits 1).
install_missing() {
	local missing=() p

	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "Installing: ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "error: these packages are missing and installing them needs root: run as root, or: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}
