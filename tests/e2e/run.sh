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

# resnet_seq once without the shim; its outputs are the reference for every run below.
baseline() {
  local out=$tmp/base.$1.$2
  [ -f "$out.bin" ] && return 0
  "$bin/resnet_seq" --type "$1" --layout "$2" --out "$out.bin" >"$out.stdout" 2>"$out.stderr"
}

# tolerance per type for a fused network (15 pairs, errors carried through 15 layers)
tolerance() { case $1 in float) echo 1e-5 ;; half) echo 5e-3 ;; bfloat16) echo 3e-2 ;; esac; }

# resnet_case TYPE LAYOUT EXPECT_FUSED SUMMARY_REGEX [VAR=VALUE...]: runs resnet_seq under the
# shim with the given environment (and the stand-in libc10 preloaded when ORACLE names it); outputs must be byte-identical when nothing is fused and
# within tolerance otherwise; stdout identical; exactly 15 pairs; every log line prefixed; one
# pair line per distinct signature; the summary must match SUMMARY_REGEX.
resnet_case() {
  local type=$1 layout=$2 fused=$3 want=$4; shift 4
  local name="resnet_seq $type $layout $*" base=$tmp/base.$type.$layout
  local run; run=$tmp/run.$RANDOM$RANDOM
  baseline "$type" "$layout" || { fail "$name (without shim)" "$base.stderr"; return; }
  if ! env "$@" CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log.%p" LD_PRELOAD="$preload${ORACLE:+:$ORACLE}" \
      "$bin/resnet_seq" --type "$type" --layout "$layout" --out "$run.bin" \
      --expect-pairs 15 --expect-fused "$fused" >"$run.stdout" 2>"$run.stderr"; then
    fail "$name (under shim)" "$run.stderr"; return
  fi
  local log; log=$(find "$tmp" -name "${run##*/}.log.*" | head -1)
  if [ "$fused" = 0 ]; then
    cmp -s "$base.bin" "$run.bin" || { fail "$name: outputs differ without fusion"; return; }
  else
    "$bin/close_enough" "$type" "$(tolerance "$type")" "$run.bin" "$base.bin" >"$run.cmp" ||
      { fail "$name: fused outputs out of tolerance" "$run.cmp"; return; }
  fi
  cmp -s "$base.stdout" "$run.stdout" || { fail "$name: stdout differs"; return; }
  if [ -s "$run.stderr" ]; then fail "$name: shim wrote to stderr despite CONVBN_LOG_FILE" "$run.stderr"; return; fi
  if [ -z "$log" ] || grep -qv '^convbn: ' "$log"; then fail "$name: log missing or unprefixed line" "$log"; return; fi
  local sigs lines
  sigs=$(awk '/distinct signatures/ {print $NF}' "$log")
  lines=$(grep -c '^convbn: pair #[0-9]* api=legacy .* -> [a-z-]* at ' "$log")
  if [ "$lines" != "$sigs" ] || [ "$sigs" -lt 5 ]; then
    fail "$name: signatures=$sigs pair lines=$lines" "$log"; return
  fi
  grep -Eq "$want" "$log" || { fail "$name: summary does not match /$want/" "$log"; return; }
  ok "$name"
}

libc10=$(realpath "$build/tests/libc10.so")
# Observe mode changes nothing and counts the fusable pairs.
resnet_case float nchw 0 'fusable +15$' CONVBN_MODE=observe
resnet_case half nhwc 0 'fusable +15$' CONVBN_MODE=observe
resnet_case bfloat16 nchw 0 'fusable +15$' CONVBN_MODE=observe
# Auto mode without a liveness oracle, and with grad mode on: nothing fused, bit-identical.
resnet_case float nhwc 0 'no-oracle +15$' CONVBN_MODE=auto
ORACLE=$libc10 resnet_case float nchw 0 'kept for gradients 1802240 bytes' CONVBN_MODE=auto \
  CONVBN_TEST_GRAD_MODE=1
# Auto mode with grad mode off (torch.no_grad()), and fuse mode: every pair fused.
ORACLE=$libc10 resnet_case float nchw 15 'fused +15$' CONVBN_MODE=auto CONVBN_TEST_GRAD_MODE=0
for cfg in "float nhwc" "half nchw" "half nhwc" "bfloat16 nchw" "bfloat16 nhwc"; do
  read -r type layout <<<"$cfg"
  resnet_case "$type" "$layout" 15 'activation bytes not moved +[1-9]' CONVBN_MODE=fuse
done
resnet_case float nchw 15 'verified pairs +15 \(max abs error [0-9.e-]*,' CONVBN_MODE=fuse CONVBN_VERIFY=1

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

# Generated pass-through wrappers (DESIGN.md 5, 5a): identical results and statuses with and
# without the shim, and CUDNN_STATUS_NOT_INITIALIZED, not a crash, where the emulation lacks
# the function.
check "pass-through wrappers: same results and statuses" bash -c "
  '$bin/passthrough' >'$tmp/pt.base' && LD_PRELOAD='$preload' '$bin/passthrough' --shim >'$tmp/pt.shim' &&
  cmp '$tmp/pt.base' '$tmp/pt.shim'"

printf 'e2e: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
