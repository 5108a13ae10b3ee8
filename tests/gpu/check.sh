#!/usr/bin/env bash
# Checks of the GPU validation kit that need no GPU (`make gpu-kit-check`, part of `make
# check`): scripts/gpu-check.sh and this file are shellcheck-clean (skipped with a message
# when shellcheck is missing); `scripts/gpu-check.sh --dry-run` exits 0 and prints every
# step; the kit's Python byte-compiles (py_compile only: the PyTorch driver is never
# imported here); tests/gpu/test_report.py (the report generator on tests/gpu/sample/, the
# log parser, the step parsers); and, outside sanitizer builds, a quick run of the kit's C
# steps over the CPU emulation (--emulation), which must write a passing report with a
# parsed backend_seq --diff row in step a's backend graph table.
# Prints "gpu-kit: N passed, N failed" and exits 1 on any failure.
# Environment: BUILD (default build), SAN (non-empty in sanitizer builds).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${BUILD:-build}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() {
  failed=$((failed + 1))
  printf 'FAIL %s\n' "$1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then tail -n 25 "$2" | sed 's/^/     /'; fi
}
skip() { printf 'skip %s\n' "$1"; }

check_shellcheck() {
  if ! command -v shellcheck >/dev/null; then
    skip "shellcheck: not installed (apt-get install shellcheck), not checked"
    return
  fi
  if shellcheck scripts/gpu-check.sh tests/gpu/check.sh >"$tmp/shellcheck" 2>&1; then
    ok "shellcheck scripts/gpu-check.sh tests/gpu/check.sh"
  else
    fail "shellcheck scripts/gpu-check.sh tests/gpu/check.sh" "$tmp/shellcheck"
  fi
}

check_dry_run() {
  local name="scripts/gpu-check.sh --dry-run prints every step and exits 0" step
  if ! bash scripts/gpu-check.sh --dry-run --build "$build" >"$tmp/dry" 2>&1; then
    fail "$name" "$tmp/dry"
    return
  fi
  for step in preflight numerics conformance discovery models training traces; do
    if ! grep -q "^\[$step\] " "$tmp/dry"; then
      fail "$name: no [$step] section" "$tmp/dry"
      return
    fi
  done
  if grep -q Traceback "$tmp/dry"; then
    fail "$name: a Python traceback" "$tmp/dry"
    return
  fi
  ok "$name ($(grep -c 'would run' "$tmp/dry") commands)"
}

check_py_compile() {
  if PYTHONPYCACHEPREFIX=$tmp/pycache python3 -m py_compile scripts/gpu/*.py tests/gpu/*.py \
      >"$tmp/pyc" 2>&1; then
    ok "python3 -m py_compile scripts/gpu/*.py tests/gpu/*.py"
  else
    fail "python3 -m py_compile scripts/gpu/*.py tests/gpu/*.py" "$tmp/pyc"
  fi
}

check_report_tests() {
  if PYTHONDONTWRITEBYTECODE=1 python3 tests/gpu/test_report.py >"$tmp/unittest" 2>&1; then
    ok "tests/gpu/test_report.py ($(grep -o 'Ran [0-9]* tests' "$tmp/unittest"))"
  else
    fail "tests/gpu/test_report.py" "$tmp/unittest"
  fi
}

check_emulation_run() {
  local name="scripts/gpu-check.sh --emulation --quick --steps numerics,conformance writes a passing report"
  if [ -n "${SAN:-}" ]; then
    skip "emulation run of the kit: not in sanitizer builds (the shim would need the ASan runtime preloaded)"
    return
  fi
  if [ ! -x "$build/tests/e2e/differential" ]; then
    skip "emulation run of the kit: $build/tests/e2e/differential not built"
    return
  fi
  if ! PYTHONDONTWRITEBYTECODE=1 bash scripts/gpu-check.sh --emulation --quick --build "$build" \
      --steps numerics,conformance --out "$tmp/run" >"$tmp/run.log" 2>&1; then
    fail "$name" "$tmp/run.log"
    return
  fi
  # The backend graph table: the --diff run with the graph passed and its row was parsed.
  if ! grep -Eq '^\| backend_seq --diff [0-9]+ fused \| pass \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \|' \
      "$tmp/run/gpu-report.md"; then
    fail "$name: no passing backend_seq --diff row in the report's backend table" "$tmp/run/gpu-report.md"
    return
  fi
  if grep -q '^Overall: \*\*PASS\*\*\.$' "$tmp/run/gpu-report.md" && [ -s "$tmp/run/gpu-results.json" ] &&
     [ -s "$tmp/run/gpu-logs.tar.gz" ] && [ ! -e "$tmp/run/work" ]; then
    ok "$name"
  else
    fail "$name: report, summary or logs missing, or work/ left behind" "$tmp/run.log"
  fi
}

check_shellcheck
check_dry_run
check_py_compile
check_report_tests
check_emulation_run
printf 'gpu-kit: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
