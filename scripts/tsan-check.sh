#!/usr/bin/env bash
# `make tsan`: the shim's threaded end-to-end scenarios under ThreadSanitizer, from a build
# made with SAN=-fsanitize=thread (the shim, the emulation and the programs in $1).  Legacy
# convs in threads (tests/e2e/hazards.c `threads`) and backend convs and BNs in 4 threads
# (tests/e2e/backend_seq.c --threads 4), each run several times: any race report fails.
# Exit status 0 when every run is clean, 1 otherwise, 2 when the build is missing.
set -euo pipefail
build=${1:?usage: tsan-check.sh BUILD_DIR}
shim=$(realpath "$build/libconvbn_shim.so" 2>/dev/null) || {
  echo "tsan: $build/libconvbn_shim.so missing" >&2; exit 2; }
runs=${TSAN_RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# check NAME PROGRAM ARGS...: runs PROGRAM under the shim (fuse mode) $runs times.
check() {
  local name=$1 i; shift
  for ((i = 1; i <= runs; i++)); do
    if ! CONVBN_MODE=fuse TSAN_OPTIONS="halt_on_error=1 exitcode=66" LD_PRELOAD="$shim" \
         "$@" --out "$tmp/out" >"$tmp/log" 2>&1; then
      echo "FAIL $name (run $i)"; sed 's/^/     /' "$tmp/log" | head -40
      failed=$((failed + 1)); return
    fi
  done
  echo "ok   $name ($runs runs, no race reported)"; passed=$((passed + 1))
}

check "hazards threads" "$build/tests/e2e/hazards" threads
check "backend_seq --threads 4 (legacy BN)" "$build/tests/e2e/backend_seq" --threads 4
check "backend_seq --threads 4 --bn backend" "$build/tests/e2e/backend_seq" --threads 4 \
  --bn backend
check "backend_seq --threads 4 --conv legacy --bn backend, half NHWC" \
  "$build/tests/e2e/backend_seq" --threads 4 --conv legacy --bn backend --type half --layout nhwc
echo "tsan: $passed passed, $failed failed"
[ "$failed" = 0 ]
