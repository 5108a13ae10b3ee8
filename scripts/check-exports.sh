#!/usr/bin/env bash
# Hook-consistency check (DESIGN.md section 10): the shim must export exactly the functions
# it hooks, and src/cudnn_calls.list must classify every function of the installed cuDNN.
#   1. scripts/gen-cudnn-hooks.py --strict succeeds against the installed cuDNN headers;
#   2. the code symbols that the shim defines in its dynamic symbol table (nm -D) equal
#      exports.txt + the functions declared in include/convbn/convbn.h + the names of the
#      extra lists given (none missing, none unexpected; each is reported by name).
# An extra list is either names, one per line (# comments), or an X-macro .def file whose
# lines `MACRO(name, ...)` name an exported function (macros ending in _USE are resolved
# only, not exported, and are skipped).
# usage: check-exports.sh SHIM.so EXPORTS.txt CUDNN_INCLUDE_DIR [EXTRA_LIST...]
# Prints "exports: N passed, N failed"; exits non-zero on any failure.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 SHIM.so EXPORTS.txt CUDNN_INCLUDE_DIR [EXTRA_LIST...]" >&2
  exit 2
fi
for f in "$@"; do
  [ -r "$f" ] || { echo "check-exports: cannot read $f" >&2; exit 2; }
done
shim_name=$1 include_name=$3
shim=$(realpath "$1") exports=$(realpath "$2") include=$(realpath "$3")
shift 3
extras=()
for f in "$@"; do extras+=("$(realpath "$f")"); done
cd "$(dirname "$0")/.." || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0

ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() {
  failed=$((failed + 1))
  printf 'FAIL %s\n' "$1"
  if [ -n "${2:-}" ]; then sed 's/^/     /' "$2"; fi
}

# Prints the names of a list file: plain names, or the first argument of X-macro lines.
list_names() {
  case $1 in
    *.def) awk '/^[[:space:]]*[A-Z][A-Z0-9_]*\(/ {
                  macro = $0; sub(/^[[:space:]]*/, "", macro); sub(/\(.*/, "", macro)
                  name = $0; sub(/^[^(]*\([[:space:]]*/, "", name); sub(/[[:space:],)].*/, "", name)
                  if (macro !~ /_USE$/ && name ~ /^[A-Za-z_][A-Za-z0-9_]*$/) print name
                }' "$1" ;;
    *) sed 's/#.*//' "$1" | awk 'NF { print $1 }' ;;
  esac
}

# Prints the functions declared in the public control API header.
public_api() {
  ${CC:-cc} -E -P -Iinclude include/convbn/convbn.h |
    grep -oE '\bconvbn_[A-Za-z0-9_]+[[:space:]]*\(' | tr -d '( \t' | sort -u
}

# 1. The list covers every function of the installed cuDNN.
if python3 scripts/gen-cudnn-hooks.py --strict --include "$include" --list src/cudnn_calls.list \
     --out "$tmp/gen" >"$tmp/strict" 2>&1; then
  ok "src/cudnn_calls.list covers every cuDNN function in $include_name"
else
  fail "src/cudnn_calls.list does not cover the cuDNN headers in $include_name" "$tmp/strict"
fi

# 2. Exported code symbols == hooked functions + public API + extra lists.
{
  list_names "$exports"
  public_api
  for extra in "${extras[@]}"; do list_names "$extra"; done
} | sort -u >"$tmp/expected"
nm -D --defined-only "$shim" | awk '$2 ~ /^[TWi]$/ { print $3 }' | sort -u >"$tmp/actual"
comm -23 "$tmp/expected" "$tmp/actual" >"$tmp/missing"
comm -13 "$tmp/expected" "$tmp/actual" >"$tmp/unexpected"
n_expected=$(wc -l <"$tmp/expected")
n_cudnn=$(list_names "$exports" | wc -l)
if [ -s "$tmp/missing" ]; then
  fail "$(wc -l <"$tmp/missing") of $n_expected hooked functions not exported by $shim_name:" \
    "$tmp/missing"
else
  ok "$shim_name exports all $n_expected hooked functions ($n_cudnn cuDNN)"
fi
if [ -s "$tmp/unexpected" ]; then
  fail "$shim_name exports $(wc -l <"$tmp/unexpected") function(s) that no list names:" \
    "$tmp/unexpected"
else
  ok "$shim_name exports nothing else"
fi

printf 'exports: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
