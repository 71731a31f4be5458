#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries BINARY loads: the runtime
# stage of the Dockerfile installs exactly these, so its package list is derived, not kept.
set -euo pipefail
binary=$1
ldd "$binary" | awk '/=> \// { print $3 }' | while read -r lib; do
  # usrmerge: dpkg may know the file under /usr/lib or /lib.
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
    dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null ||
    { echo "runtime-packages: no package owns $lib" >&2; exit 1; }
done | cut -d: -f1 | sort -u
