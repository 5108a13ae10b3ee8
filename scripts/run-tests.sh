#!/usr/bin/env bash
# Runs test binaries, one after another, and prints one closing line
# "<suite>: N passed, N failed" (N counts binaries).  Check's own per-binary
# summary lines stay visible above it.  Exit status: non-zero if any failed.
set -u
suite=$1; shift
passed=0; failed=0; failures=()
for t in "$@"; do
  if CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} "$t"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failures+=("$t")
  fi
done
[ ${#failures[@]} -eq 0 ] || printf '%s: FAILED %s\n' "$suite" "${failures[*]}"
printf '%s: %d passed, %d failed\n' "$suite" "$passed" "$failed"
[ "$failed" -eq 0 ]
