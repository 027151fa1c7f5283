#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR for SECONDS each, from its seed corpus
# (fuzz/corpus/<name>/), into a scratch corpus so the repository is not touched.
set -euo pipefail
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS}
seconds=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for target in "$build"/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  work=$(mktemp -d)
  seeds="$root/fuzz/corpus/$name"
  echo "fuzz: $name for ${seconds}s"
  if ! "$target" -max_total_time="$seconds" -max_len=65536 -artifact_prefix="$build/fuzz/$name-" \
       "$work" ${seeds:+$([ -d "$seeds" ] && echo "$seeds")} >"$build/fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED, see $build/fuzz/$name.log"; tail -30 "$build/fuzz/$name.log"; status=1
  else
    grep -E '^(#[0-9]+|Done)' "$build/fuzz/$name.log" | tail -1
  fi
  rm -rf "$work"
done
exit $status
