#!/usr/bin/env bash
# poolwatch_build_info's revision follows HEAD without a configure by hand: a copy of the
# source's tracked files (as they are now, edits included) in a git repository of its own is
# configured once; after a commit there, the build's own check regenerates version.h with the
# new revision, and with HEAD unmoved the build does not configure again. A revision given to
# CMake is used as it is.
#   revision_test.sh SOURCE_DIR
set -euo pipefail
source=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/src"
git -C "$source" ls-files -z | (cd "$source" && xargs -0 cp --parents -t "$work/src")
# git in the copy, as a user who may commit.
repo() { git -C "$work/src" -c user.name=test -c user.email=test@localhost "$@"; }
repo init -q
repo add -A
repo commit -qm first

cmake -S "$work/src" -B "$work/build" -G Ninja -DPOOLWATCH_BUILD_TESTS=OFF \
  -DPOOLWATCH_BUILD_BENCH=OFF -DPOOLWATCH_BUILD_EXAMPLES=OFF > "$work/configure.txt" 2>&1 ||
  { cat "$work/configure.txt"; exit 1; }
header=$work/build/lib/include/poolwatch/version.h

# The revision the header holds, against HEAD's.
expect_revision() {
  local want
  want=$(repo rev-parse --short=12 HEAD)
  grep -qF "kRevision = \"$want\"" "$header" ||
    { echo "$1: version.h does not hold HEAD's revision $want:"; cat "$header"; exit 1; }
}
expect_revision "after configuring"

# HEAD unmoved: nothing to configure.
ninja -C "$work/build" -n build.ninja > "$work/check.txt"
grep -q "no work to do" "$work/check.txt" ||
  { echo "the build configures again with HEAD unmoved:"; cat "$work/check.txt"; exit 1; }

repo commit -q --allow-empty -m second
ninja -C "$work/build" build.ninja > "$work/check.txt" 2>&1 ||
  { cat "$work/check.txt"; exit 1; }
expect_revision "after a commit and a build"

# A checkout of the first commit (a detached HEAD) too.
repo checkout -q HEAD~1
ninja -C "$work/build" build.ninja > "$work/check.txt" 2>&1 ||
  { cat "$work/check.txt"; exit 1; }
expect_revision "after a checkout and a build"

# A revision given (as the Dockerfile gives it, without .git) is the one reported.
cmake -S "$work/src" -B "$work/given" -G Ninja -DPOOLWATCH_BUILD_TESTS=OFF \
  -DPOOLWATCH_BUILD_BENCH=OFF -DPOOLWATCH_BUILD_EXAMPLES=OFF -DPOOLWATCH_REVISION=v0.1.0-given \
  > "$work/configure.txt" 2>&1 || { cat "$work/configure.txt"; exit 1; }
grep -qF 'kRevision = "v0.1.0-given"' "$work/given/lib/include/poolwatch/version.h" ||
  { echo "-DPOOLWATCH_REVISION was not used:"; cat "$work/given/lib/include/poolwatch/version.h"; exit 1; }
echo "version.h followed HEAD through a commit and a checkout, and took a given revision"
