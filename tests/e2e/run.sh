#!/usr/bin/env bash
# End-to-end tests: ordinary cuDNN programs run over the CPU emulation, without and with
# the shim preloaded.  Asserts exact pair counts, byte-identical outputs and stdout, the
# shim's log format, and invariant 5.  Prints "e2e: N passed, N failed" and exits non-zero
# on any failure.  Environment: BUILD (default build), SAN (non-empty for sanitizer builds).
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${BUILD:-build}
bin=$build/tests/e2e
shim=$(realpath "$build/libconvbn_shim.so")
LD_LIBRARY_PATH=$(realpath "$build/emu")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
preload=$shim
if [ -n "${SAN:-}" ]; then
  preload="$(${CC:-cc} -print-file-name=libasan.so):$(${CC:-cc} -print-file-name=libubsan.so):$shim"
  export ASAN_OPTIONS=detect_leaks=0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0

ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; [ -n "${2:-}" ] && sed 's/^/     /' "$2" | head -20; }
check() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else fail "$name" "$tmp/out"; fi; }

# resnet_seq under one configuration: bit-identical outputs and stdout, exact pair count,
# every log line prefixed, one line per distinct signature, summary present.
resnet_case() {
  local type=$1 layout=$2 mode=$3 name="resnet_seq $1 $2 mode=$3"
  local base=$tmp/base.$type.$layout
  "$bin/resnet_seq" --type "$type" --layout "$layout" --out "$base.bin" >"$base.stdout" 2>"$base.stderr" ||
    { fail "$name (without shim)" "$base.stderr"; return; }
  local run=$tmp/run.$type.$layout.$mode
  if ! CONVBN_MODE=$mode CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log.%p" LD_PRELOAD=$preload \
      "$bin/resnet_seq" --type "$type" --layout "$layout" --out "$run.bin" --expect-pairs 15 \
      >"$run.stdout" 2>"$run.stderr"; then
    fail "$name (under shim)" "$run.stderr"; return
  fi
  local log; log=$(find "$tmp" -name "${run##*/}.log.*" | head -1)
  if ! cmp -s "$base.bin" "$run.bin"; then fail "$name: outputs differ"; return; fi
  if ! cmp -s "$base.stdout" "$run.stdout"; then fail "$name: stdout differs"; return; fi
  if [ -s "$run.stderr" ]; then fail "$name: shim wrote to stderr despite CONVBN_LOG_FILE" "$run.stderr"; return; fi
  if [ -z "$log" ] || grep -qv '^convbn: ' "$log"; then fail "$name: log missing or unprefixed line" "$log"; return; fi
  local pairs sigs lines
  pairs=$(awk '/pairs seen/ {print $NF}' "$log")
  sigs=$(awk '/distinct signatures/ {print $NF}' "$log")
  lines=$(grep -c '^convbn: pair api=legacy .* -> fusable at ' "$log")
  if [ "$pairs" != 15 ] || [ "$lines" != "$sigs" ] || [ "$sigs" -lt 5 ]; then
    fail "$name: pairs=$pairs signatures=$sigs pair lines=$lines" "$log"; return
  fi
  if [ "$mode" != observe ] && ! grep -q "mode=$mode (behaves as observe" "$log"; then
    fail "$name: summary does not say $mode behaves as observe" "$log"; return
  fi
  ok "$name"
}

resnet_case float nchw observe
resnet_case half nhwc observe
resnet_case bfloat16 nchw observe
resnet_case float nhwc auto
resnet_case float nchw fuse

# Mode off: the shim forwards and records nothing.
check "mode=off records nothing" bash -c "
  CONVBN_MODE=off CONVBN_STATS=1 LD_PRELOAD='$preload' '$bin/resnet_seq' --out '$tmp/off.bin' --expect-pairs 0"

# Call site: the pair line names the program function that issued the BN.
check "pair line names the call site" bash -c "
  CONVBN_LOG=1 LD_PRELOAD='$preload' '$bin/resnet_seq' 2>&1 >/dev/null | grep -q 'at conv_bn+0x[0-9a-f]* (resnet_seq)'"

# CONVBN_LOG=2: one line per intercepted call (17 forward convs in resnet_seq).
check "CONVBN_LOG=2 logs every intercepted conv" bash -c "
  n=\$(CONVBN_LOG=2 LD_PRELOAD='$preload' '$bin/resnet_seq' 2>&1 >/dev/null | grep -c '^convbn: call cudnnConvolutionForward ')
  [ \"\$n\" = 15 ]"

# A bad value: exactly one warning, default used, program unaffected.
check "bad CONVBN_MODE warns once" bash -c "
  CONVBN_MODE=bogus LD_PRELOAD='$preload' '$bin/resnet_seq' --expect-pairs 15 2>'$tmp/bad.err' >/dev/null &&
  [ \"\$(grep -c 'convbn: ignoring CONVBN_MODE=\"bogus\"' '$tmp/bad.err')\" = 1 ] &&
  [ \"\$(wc -l < '$tmp/bad.err')\" = 1 ]"

# Invariant 5: no CUDA library mapped by the shim in a process that never uses CUDA.
check "no CUDA library loaded in a CUDA-free program" env LD_PRELOAD="$preload" "$bin/no_cuda"
check "shell under the shim prints only its own output" bash -c "
  [ \"\$(LD_PRELOAD='$preload' sh -c 'echo hello')\" = hello ]"

# DESIGN.md 5a: cuDNN reached only through an RTLD_LOCAL library.
check "RTLD_LOCAL-loaded cuDNN still found" env LD_PRELOAD="$preload" "$bin/rtld_local" "$(realpath "$bin/libmiddle.so")"

printf 'e2e: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
