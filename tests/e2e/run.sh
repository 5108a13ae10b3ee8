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

# Hazards between a conv and its BN (tests/e2e/hazards.c; `hazards --list`): each scenario
# runs without the shim, then under it, and checks the shim's counters itself.
# hazard_case SCENARIO exact|close SUMMARY_REGEX [VAR=VALUE...]: outputs byte-identical
# (exact: the shim must not fuse) or within fp32 tolerance (close: fusing is legal), and
# the exit summary matches SUMMARY_REGEX.  BASE_ARGS: extra arguments for the run without
# the shim; ORACLE: the stand-in libc10 to preload.
hazard_case() {
  local scenario=$1 compare=$2 want=$3; shift 3
  local name="hazards $scenario $*" run=$tmp/hz.$scenario.$RANDOM
  # shellcheck disable=SC2086 # BASE_ARGS is a list of words, possibly empty
  "$bin/hazards" "$scenario" ${BASE_ARGS:-} --out "$run.base" >"$run.out" 2>&1 ||
    { fail "$name (without shim)" "$run.out"; return; }
  env "$@" CONVBN_STATS=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload${ORACLE:+:$ORACLE}" \
    "$bin/hazards" "$scenario" --out "$run.bin" >"$run.out" 2>&1 ||
    { fail "$name (under shim)" "$run.out"; return; }
  if [ "$compare" = exact ]; then
    cmp -s "$run.base" "$run.bin" || { fail "$name: outputs differ from the unfused run"; return; }
  else
    "$bin/close_enough" float 1e-5 "$run.bin" "$run.base" >"$run.cmp" ||
      { fail "$name: fused outputs out of tolerance" "$run.cmp"; return; }
  fi
  grep -Eq "$want" "$run.log" || { fail "$name: summary does not match /$want/" "$run.log"; return; }
  ok "$name"
}
# Something observes or changes y, or reuses memory, before the BN: the conv runs unfused
# first (flushed by the named call) and the answer is exactly the unfused one.
while read -r scenario trigger; do
  hazard_case "$scenario" exact "flushed by $trigger +1\$" CONVBN_MODE=fuse
done <<'HAZARDS'
kernel-reads-y cudaLaunchKernel
kernel-writes-y cudaLaunchKernel
kernel-adds-bias cudaLaunchKernel
add-tensor-full cudnnAddTensor
add-tensor-scaled-bias cudnnAddTensor
op-tensor-bias cudnnOpTensor
memcpy-to-host cudaMemcpy
memcpy-async-to-host cudaMemcpyAsync
workspace-reuse cudaFree
exit-pending exit
HAZARDS
hazard_case alias-input exact 'not fused: alias +1$' CONVBN_MODE=fuse
hazard_case alias-partial exact 'not fused: alias +1$' CONVBN_MODE=fuse
ORACLE=$libc10 hazard_case grad-mode exact 'not fused: grad-mode +2$' CONVBN_MODE=auto \
  CONVBN_TEST_GRAD_MODE=1
# Fusing is legal: the pairs fuse (in threads-grad-one all but the grad-mode thread's),
# within tolerance; the threads scenarios against their serial run without the shim.
hazard_case no-hazard close '^convbn: +fused +2$' CONVBN_MODE=fuse
hazard_case bn-in-place close '^convbn: +fused +1$' CONVBN_MODE=fuse
hazard_case descriptors-destroyed close '^convbn: +fused +1$' CONVBN_MODE=fuse
hazard_case workspace-as-output close '^convbn: +fused +1$' CONVBN_MODE=fuse
hazard_case two-streams close '^convbn: +fused +4$' CONVBN_MODE=fuse
ORACLE=$libc10 hazard_case two-streams close '^convbn: +fused +4$' CONVBN_MODE=auto \
  CONVBN_TEST_GRAD_MODE=0
BASE_ARGS=--serial hazard_case threads close '^convbn: +fused +12$' CONVBN_MODE=fuse
BASE_ARGS=--serial ORACLE=$libc10 hazard_case threads close '^convbn: +fused +12$' \
  CONVBN_MODE=auto CONVBN_TEST_GRAD_MODE=0
BASE_ARGS=--serial ORACLE=$libc10 hazard_case threads-grad-one close 'not fused: grad-mode +3$' \
  CONVBN_MODE=auto CONVBN_TEST_GRAD_MODE=0

# Differential (tests/e2e/differential.c): 600 random conv -> BN pairs (2-d/3-d, layouts,
# groups, dilation, types, conv bias forms) checked against the program's own double
# reference with a per-type tolerance, without the shim (the unfused emulation), fused (all
# 600 pairs must fuse), fused with CONVBN_VERIFY, and in observe mode (nothing fused).
check "differential: 600 cases without the shim" "$bin/differential"
check "differential: 600 cases fused" env CONVBN_MODE=fuse LD_PRELOAD="$preload" "$bin/differential"
check "differential: 100 cases fused, CONVBN_VERIFY=1" env CONVBN_MODE=fuse CONVBN_VERIFY=1 \
  LD_PRELOAD="$preload" "$bin/differential" --cases 100
check "differential: 600 cases observed, none fused" env CONVBN_MODE=observe \
  LD_PRELOAD="$preload" "$bin/differential" --expect-fused 0

# CONVBN_TRACE (docs/trace-schema.md): the trace of resnet_seq parses line by line, has its
# header, seq 0..n-1, every conv -> BN pair (the BN reads the conv's y buffer) and the other
# ops; outputs and stdout stay byte-identical; in fuse mode the trace still shows the
# program's calls.  A bad path warns once; mode off, or a process without cuDNN, writes none.
cat >"$tmp/trace_check.py" <<'PY'
import collections, json, re, sys

BUF_KEYS = {"buf", "scale", "bias", "mean", "var", "saved_mean", "saved_inv_var", "dscale", "dbias"}

def load(path):
    text = open(path, encoding="utf-8").read()
    assert text.endswith("\n"), "the trace does not end with a whole line"
    lines = [json.loads(line) for line in text.splitlines()]
    return lines[0], lines[1:]

def check(path, data_type):
    head, ops = load(path)
    assert head["convbn_trace"] == 1 and head["source"] == "recorded", head
    assert re.fullmatch(r"\d+\.\d+\.\d+", head["cudnn_version"]), head
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", head["start_time"]), head
    assert head["device"] and path.endswith(".%d.jsonl" % head["pid"]), head
    assert [op["seq"] for op in ops] == list(range(len(ops))), "seq is not 0..n-1"
    kinds = collections.Counter(op["op"] for op in ops)
    want = {"conv_fwd": 15, "bn_inference": 15, "add_tensor": 2, "op_tensor": 2, "opaque": 14}
    assert kinds == want, kinds
    for conv, bn in zip(ops, ops[1:]):
        if conv["op"] != "conv_fwd":
            continue
        assert bn["op"] == "bn_inference", (conv, bn)
        assert bn["x"]["buf"] == conv["y"]["buf"] and bn["x"]["dims"] == conv["y"]["dims"], (conv, bn)
        assert conv["x"]["type"] == data_type and conv["site"].startswith("conv_bn+0x"), conv
        assert conv["stream"] == bn["stream"] == 1 and conv["thread"] == bn["thread"] == 0, conv

def without_ids(value):
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items()
                if not (k in BUF_KEYS and (v is None or isinstance(v, int)))}
    return value

def same_calls(path_a, path_b):
    ops_a, ops_b = load(path_a)[1], load(path_b)[1]
    assert [without_ids(op) for op in ops_a] == [without_ids(op) for op in ops_b], "traces differ"

if sys.argv[1] == "check":
    check(sys.argv[2], sys.argv[3])
else:
    same_calls(sys.argv[2], sys.argv[3])
PY
# trace_case TYPE LAYOUT MODE: runs resnet_seq with CONVBN_TRACE; leaves the trace in $tmp/tr.MODE.TYPE.LAYOUT.
trace_case() {
  local type=$1 layout=$2 mode=$3 base=$tmp/base.$1.$2 run=$tmp/tr.$3.$1.$2
  local name="trace: resnet_seq $type $layout CONVBN_MODE=$mode"
  baseline "$type" "$layout" || { fail "$name (without shim)" "$base.stderr"; return; }
  mkdir -p "$run"
  CONVBN_MODE=$mode CONVBN_TRACE="$run/trace.%p.jsonl" LD_PRELOAD="$preload" "$bin/resnet_seq" \
    --type "$type" --layout "$layout" --out "$run.bin" >"$run.stdout" 2>"$run.stderr" ||
    { fail "$name (under shim)" "$run.stderr"; return; }
  [ "$(find "$run" -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] ||
    { fail "$name: not exactly one trace file"; return; }
  [ ! -s "$run.stderr" ] || { fail "$name: shim wrote to stderr" "$run.stderr"; return; }
  cmp -s "$base.stdout" "$run.stdout" || { fail "$name: stdout differs"; return; }
  if [ "$mode" = observe ]; then
    cmp -s "$base.bin" "$run.bin" || { fail "$name: outputs differ"; return; }
  fi
  python3 "$tmp/trace_check.py" check "$run"/trace.*.jsonl "$type" >"$run.check" 2>&1 ||
    { fail "$name: trace" "$run.check"; return; }
  ok "$name"
}
trace_case float nchw observe
trace_case half nhwc observe
trace_case float nchw fuse
check "trace: fuse mode records the program's calls, as observe mode does" \
  python3 "$tmp/trace_check.py" same "$tmp"/tr.observe.float.nchw/trace.*.jsonl \
  "$tmp"/tr.fuse.float.nchw/trace.*.jsonl
check "trace: unwritable path warns once, program unaffected" bash -c "
  CONVBN_MODE=observe CONVBN_TRACE='$tmp/missing/t.jsonl' LD_PRELOAD='$preload' \
    '$bin/resnet_seq' --out '$tmp/trbad.bin' 2>'$tmp/trbad.err' >/dev/null &&
  cmp -s '$tmp/base.float.nchw.bin' '$tmp/trbad.bin' &&
  [ \"\$(wc -l < '$tmp/trbad.err')\" = 1 ] &&
  grep -q '^convbn: trace $tmp/missing/t.jsonl: cannot open: ' '$tmp/trbad.err'"
check "trace: mode=off or a process without cuDNN writes no trace" bash -c "
  CONVBN_MODE=off CONVBN_TRACE='$tmp/troff.%p' LD_PRELOAD='$preload' '$bin/resnet_seq' >/dev/null &&
  CONVBN_TRACE='$tmp/trsh.%p' LD_PRELOAD='$preload' sh -c 'echo hello' >/dev/null &&
  ! ls '$tmp'/troff.* '$tmp'/trsh.* 2>/dev/null"

# Replay bench (bench/convbn-bench): a trace recorded from resnet_seq replays with the same
# 15 pairs (--summary reads the shim's counters), and in all three modes with every fused
# output within tolerance of baseline; a malformed trace is an error naming file:line; the
# bench refuses to run without the shim unless --no-shim, and rejects bad arguments.
bench=$build/bench/convbn-bench
check "bench: trace recorded from resnet_seq replays with 15 pairs" bash -c "
  CONVBN_MODE=observe CONVBN_TRACE='$tmp/rec.%p.jsonl' LD_PRELOAD='$preload' '$bin/resnet_seq' >/dev/null &&
  rec=\$(ls '$tmp'/rec.*.jsonl) && LD_PRELOAD='$preload' '$bench' --summary \"\$rec\" >'$tmp/rec.sum' &&
  cat '$tmp/rec.sum' && grep -Eq '^ +pairs +15\$' '$tmp/rec.sum' && grep -Eq '^ +fusable +15 ' '$tmp/rec.sum'"
check "bench: three modes agree on the recorded trace, every pair fused" bash -c "
  LD_PRELOAD='$preload' '$bench' -n 1 -w 0 --json '$tmp/rec.json' '$tmp'/rec.*.jsonl >'$tmp/rec.out' &&
  cat '$tmp/rec.out' && grep -q '^shim: fused 15 of 15 pairs' '$tmp/rec.out' &&
  grep -q '^check: 15 pairs.*: ok\$' '$tmp/rec.out' && [ -s '$tmp/rec.json' ]"
printf '%s\n' '{"convbn_trace":1,"cudnn_version":"9.19.0","device":"unknown","pid":0,"start_time":"2026-01-01T00:00:00Z","source":"synthetic"}' \
  '{"seq":0,"op":"opaque","api":"legacy","stream":0,"thread":0,"name":"cudnnCreate"}' \
  '{"seq":1,"op":"conv_fwd","api":"legacy","stream":0,"thread":0}' >"$tmp/bad.jsonl"
check "bench: malformed trace names file:line, exit 2" bash -c "
  LD_PRELOAD='$preload' '$bench' '$tmp/bad.jsonl' 2>'$tmp/bad.out'; rc=\$?; cat '$tmp/bad.out'
  [ \$rc = 2 ] && grep -q 'bad.jsonl:3: missing key \"x\"' '$tmp/bad.out'"
check "bench: without the shim, exit 2 unless --no-shim" bash -c "
  '$bench' '$tmp'/rec.*.jsonl 2>'$tmp/noshim.out'; rc=\$?; cat '$tmp/noshim.out'
  [ \$rc = 2 ] && grep -q 'not preloaded' '$tmp/noshim.out' &&
  '$bench' --no-shim -n 1 -w 0 '$tmp'/rec.*.jsonl | grep -q '^check: 15 pairs.*: ok\$'"
check "bench: bad arguments print the usage, exit 2" bash -c "
  LD_PRELOAD='$preload' '$bench' -n 0 '$tmp/bad.jsonl' 2>'$tmp/args.out'; rc=\$?; cat '$tmp/args.out'
  [ \$rc = 2 ] && grep -q '^usage: convbn-bench' '$tmp/args.out'"

# Backend graphs in the trace: backend_seq with backend BNs and --backward 1 records each of
# its 6 pairs as conv_fwd and bn_inference (var_form inv_std, eps 0) with api backend, one
# conv_bwd_data and one conv_bwd_filter with api backend, and no opaque backend execute; the
# bench replays that trace through the legacy calls with every pair fused.
backend_trace() {
  CONVBN_MODE=observe CONVBN_TRACE="$tmp/bk.%p.jsonl" LD_PRELOAD="$preload" "$bin/backend_seq" \
    --bn backend --backward 1 >/dev/null || return 1
  local t want n; t=$(ls "$tmp"/bk.*.jsonl) || return 1
  for want in '6 "op":"conv_fwd","api":"backend"' \
      '6 "op":"bn_inference","api":"backend".*"var_form":"inv_std","eps":0,' \
      '1 "op":"conv_bwd_data","api":"backend"' '1 "op":"conv_bwd_filter","api":"backend"' \
      '0 "op":"opaque","api":"backend"'; do
    n=$(grep -c -- "${want#* }" "$t")
    [ "$n" = "${want%% *}" ] || { echo "$n lines match ${want#* }, expected ${want%% *}"; return 1; }
  done
  LD_PRELOAD="$preload" "$bench" -n 1 -w 0 "$t" >"$tmp/bk.out" || { cat "$tmp/bk.out"; return 1; }
  cat "$tmp/bk.out"
  grep -q '^shim: fused 6 of 6 pairs' "$tmp/bk.out" && grep -q '^check: 6 pairs.*: ok$' "$tmp/bk.out"
}
check "trace: backend conv, BN and backward graphs recorded with api backend, and replayed" \
  backend_trace
check "bench: a bad var_form names file:line, exit 2" bash -c "
  LD_PRELOAD='$preload' '$bench' bench/fuzz-corpus/invalid-var-form.jsonl 2>'$tmp/vf.out'; rc=\$?
  cat '$tmp/vf.out'; [ \$rc = 2 ] && grep -q 'invalid-var-form.jsonl:2: key \"var_form\": expected one of' '$tmp/vf.out'"

# Bundled synthetic traces are valid (schema, each BN consumes its conv's output), their
# summary counts the pairs of the real architectures, and the plot script draws a PNG.
check "bundled traces pass gen-traces.py --check" python3 scripts/gen-traces.py --check bench/traces/*.jsonl
check "bench --summary of the bundled traces and the bytes-saved plot" bash -c "
  LD_PRELOAD='$preload' '$bench' --summary --json '$tmp/sum.json' bench/traces/resnet50.jsonl \
    bench/traces/mobilenet_v2.jsonl >'$tmp/sum.txt' && cat '$tmp/sum.txt' &&
  [ \"\$(grep -Ec '^ +pairs +(53|52)\$' '$tmp/sum.txt')\" = 2 ] &&
  python3 scripts/plot-bytes-saved.py '$tmp/sum.json' --trace mobilenet_v2 -o '$tmp/plot.png' &&
  [ \"\$(head -c 8 '$tmp/plot.png' | od -An -tx1 | tr -d ' ')\" = 89504e470d0a1a0a ]"

# Backend (graph) API convs (tests/e2e/backend_seq.c, PyTorch 2.x's pattern: cached plans, a
# variant pack per call, one plan destroyed right after execute) each followed by a legacy
# inference BN: all 6 pairs reported with api=backend.  Where fusing is allowed the backend
# conv is deferred (its plan held past the program's destroy, a shim variant pack) and all 6
# pairs fuse through the legacy fused path, outputs within tolerance; otherwise nothing
# fuses and every output is bit-identical.
# backend_case TYPE LAYOUT FUSED SUMMARY_REGEX [VAR=VALUE...] (ORACLE: the stand-in libc10).
backend_case() {
  local type=$1 layout=$2 fused=$3 want=$4; shift 4
  local name="backend_seq $type $layout $*" run=$tmp/bk.$RANDOM$RANDOM
  "$bin/backend_seq" --type "$type" --layout "$layout" --out "$run.base" >"$run.base.out" 2>&1 ||
    { fail "$name (without shim)" "$run.base.out"; return; }
  env "$@" CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload${ORACLE:+:$ORACLE}" \
    "$bin/backend_seq" --type "$type" --layout "$layout" --out "$run.bin" --expect-pairs 6 \
    --expect-fused "$fused" >"$run.out" 2>&1 || { fail "$name (under shim)" "$run.out"; return; }
  if [ "$fused" = 0 ]; then
    cmp -s "$run.base" "$run.bin" || { fail "$name: outputs differ without fusion"; return; }
  else
    "$bin/close_enough" "$type" "$(tolerance "$type")" "$run.bin" "$run.base" >"$run.cmp" ||
      { fail "$name: fused outputs out of tolerance" "$run.cmp"; return; }
  fi
  cmp -s "$run.base.out" "$run.out" || { fail "$name: stdout differs" "$run.out"; return; }
  local lines sigs
  lines=$(grep -c '^convbn: pair #[0-9]* api=backend conv=forward .* -> [a-z-]* at ' "$run.log")
  sigs=$(awk '/distinct signatures/ {print $NF}' "$run.log")
  if [ "$lines" != 4 ] || [ "$sigs" != 4 ] || grep -q 'api=legacy' "$run.log"; then
    fail "$name: pair lines=$lines signatures=$sigs" "$run.log"; return
  fi
  if ! { grep -Eq '^convbn: +pairs seen +6$' "$run.log" && grep -Eq "$want" "$run.log" &&
         grep -Eq "^convbn: +by API: legacy 0 seen, 0 fused; backend 6 seen, $fused fused$" \
           "$run.log"; }; then
    fail "$name: summary does not match /$want/ or its API line" "$run.log"; return
  fi
  ok "$name"
}
# The emulation's backend suite (statuses of every error path, descriptor copies, results)
# passes unchanged under the shim's backend hooks.  Observe mode: the suite reads results
# straight from (emulated) device memory after each execute, without the copy or
# synchronisation a real program needs, so a deferred conv would look unrun.
check "backend hooks: tests/emu/test_backend passes under the shim" env CONVBN_MODE=observe \
  LD_PRELOAD="$preload" "$build/tests/emu/test_backend"
backend_case float nchw 0 '^convbn: +fusable +6$' CONVBN_MODE=observe
backend_case half nhwc 0 '^convbn: +fusable +6$' CONVBN_MODE=observe
backend_case float nchw 6 '^convbn: +fused +6$' CONVBN_MODE=fuse
backend_case float nhwc 6 '^convbn: +fused +6$' CONVBN_MODE=fuse
backend_case half nchw 6 '^convbn: +fused +6$' CONVBN_MODE=fuse
backend_case half nhwc 6 '^convbn: +fused +6$' CONVBN_MODE=fuse
ORACLE=$libc10 backend_case float nchw 6 '^convbn: +fused +6$' CONVBN_MODE=auto \
  CONVBN_TEST_GRAD_MODE=0
ORACLE=$libc10 backend_case float nchw 0 '^convbn: +not fused: grad-mode +6$' CONVBN_MODE=auto \
  CONVBN_TEST_GRAD_MODE=1
# A reader of y between the backend conv and its BN (cudaMemcpy) runs the deferred conv
# first: the exact unfused answer, every flush counted.
check "backend_seq: cudaMemcpy of y flushes the deferred backend conv" bash -c "
  '$bin/backend_seq' --hazard 1 --out '$tmp/bkh.base' >/dev/null &&
  CONVBN_MODE=fuse CONVBN_LOG=1 CONVBN_LOG_FILE='$tmp/bkh.log' LD_PRELOAD='$preload' \
    '$bin/backend_seq' --hazard 1 --out '$tmp/bkh.bin' --expect-fused 0 >/dev/null &&
  cmp -s '$tmp/bkh.base' '$tmp/bkh.bin' &&
  grep -Eq '^convbn: +flushed by cudaMemcpy +6$' '$tmp/bkh.log'"

# Backend BN inference (tests/e2e/backend_seq.c --bn backend: PyTorch's BatchNorm_v8, one
# NORM_FORWARD graph fed the inverse std) after each backend conv.  (b') inverse std prepared
# before the conv: all 6 pairs fuse (the fold takes var as 1/sqrt(var + eps)), within
# tolerance; observe mode is byte-identical.  (b) inverse std computed by a kernel launched
# between conv and BN, as PyTorch does: the conservative flush rule runs the conv at
# cudaLaunchKernel, nothing pairs, the answer is exact.  (c) cudnn.benchmark: the first
# layer's conv executed through 21 plans into one y before the BN: each execute flushes the
# one before it (20), only the last fuses.
# bkbn_case MODE PAIRS FUSED "FLAGS" REGEX... (every REGEX must match a line of the log)
bkbn_case() {
  local mode=$1 pairs=$2 fused=$3 flags=$4; shift 4
  local name="backend_seq $flags ($mode)" run=$tmp/bkbn.$RANDOM$RANDOM type=float re
  case "$flags" in *half*) type=half ;; esac
  # shellcheck disable=SC2086
  "$bin/backend_seq" $flags --out "$run.base" >"$run.base.out" 2>&1 ||
    { fail "$name (without shim)" "$run.base.out"; return; }
  # shellcheck disable=SC2086
  CONVBN_MODE=$mode CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload" \
    "$bin/backend_seq" $flags --out "$run.bin" --expect-pairs "$pairs" --expect-fused "$fused" \
    >"$run.out" 2>&1 || { fail "$name (under shim)" "$run.out"; return; }
  if [ "$fused" = 0 ]; then
    cmp -s "$run.base" "$run.bin" || { fail "$name: outputs differ without fusion"; return; }
  else
    "$bin/close_enough" "$type" "$(tolerance "$type")" "$run.bin" "$run.base" >"$run.cmp" ||
      { fail "$name: fused outputs out of tolerance" "$run.cmp"; return; }
  fi
  cmp -s "$run.base.out" "$run.out" || { fail "$name: stdout differs" "$run.out"; return; }
  for re in "$@"; do
    grep -Eq "$re" "$run.log" || { fail "$name: log does not match /$re/" "$run.log"; return; }
  done
  ok "$name"
}
bkbn_case fuse 6 6 "--bn backend" '^convbn: +fused +6$'
bkbn_case fuse 6 6 "--bn backend --type half --layout nhwc" '^convbn: +fused +6$'
bkbn_case fuse 6 6 "--bn backend --type half --layout nchw" '^convbn: +fused +6$'
bkbn_case observe 6 0 "--bn backend --layout nhwc" '^convbn: +fusable +6$'
bkbn_case observe 6 0 "--bn backend --type half" '^convbn: +fusable +6$'
bkbn_case fuse 0 0 "--bn backend --bn-kernel 1" '^convbn: +flushed by cudaLaunchKernel +6$'
bkbn_case fuse 0 0 "--bn backend --bn-kernel 1 --type half --layout nhwc" \
  '^convbn: +flushed by cudaLaunchKernel +6$'
bkbn_case fuse 1 1 "--benchmark 1 --bn backend" '^convbn: +fused +1$' \
  '^convbn: +flushed by cudnnBackendExecute +20$'
bkbn_case fuse 1 1 "--benchmark 1 --type half --layout nhwc" '^convbn: +fused +1$' \
  '^convbn: +flushed by cudnnBackendExecute +20$'
# 200 random backend conv -> BN pairs (legacy or backend BN; shapes, layouts, groups,
# dilation, stride, padding, float/half) against the test's naive double reference, all
# fused (the counters are checked through convbn_get_counters).
check "backend_seq --diff 200: every random backend pair fused, within tolerance" \
  env CONVBN_MODE=fuse LD_PRELOAD="$preload" "$bin/backend_seq" --diff 200 \
  --expect-pairs 200 --expect-fused 200
check "backend_seq --diff 200 without the shim, within tolerance" "$bin/backend_seq" --diff 200

# A backend conv's fused pair runs as the shim's own backend graph (folded conv + bias
# epilogue, src/backend_fused.c), built once per geometry and handle (4 geometries in
# backend_seq's 6 pairs).  Where no engine finalizes it (EMU_CUDNN_NO_FUSION_ENGINE) it is
# refused once per geometry and every pair takes the legacy fused path; CONVBN_BACKEND_GRAPH=0
# goes there directly.  The emulation computes both paths alike: outputs byte-identical.
# cudnnDestroy of the program's handle destroys every graph built on it (logged).
# graph_case TYPE LAYOUT BUILT REFUSED GRAPH_PAIRS [VAR=VALUE...]
graph_case() {
  local type=$1 layout=$2 built=$3 refused=$4 graphs=$5; shift 5
  local name="fused backend graph $type $layout $*" run=$tmp/fg.$RANDOM$RANDOM ref=$tmp/fg.$type.$layout
  env "$@" CONVBN_MODE=fuse CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload" \
    "$bin/backend_seq" --type "$type" --layout "$layout" --out "$run.bin" --expect-fused 6 \
    >"$run.out" 2>&1 || { fail "$name" "$run.out"; return; }
  local b r g d
  b=$(grep -c '^convbn: fused backend graph built for x=[0-9x]* w=[0-9x]* type=[a-z]* in ' "$run.log")
  r=$(grep -c '^convbn: fused backend graph refused for .*: status [0-9]* (.*); its pairs use the legacy fused path$' "$run.log")
  g=$(awk '/pairs fused as backend graphs/ {print $NF}' "$run.log") # printed when not 0
  g=${g:-0}
  d=$(sed -n 's/^convbn: cudnnDestroy: \([0-9]*\) fused backend graphs built on the handle destroyed$/\1/p' "$run.log")
  d=${d:-0}
  if [ "$b" != "$built" ] || [ "$r" != "$refused" ] || [ "$g" != "$graphs" ] || [ "$d" != "$built" ]; then
    fail "$name: built=$b refused=$r graph pairs=$g destroyed with the handle=$d" "$run.log"; return
  fi
  if [ -f "$ref" ]; then
    cmp -s "$ref" "$run.bin" || { fail "$name: outputs differ from the other fused path"; return; }
  else
    cp "$run.bin" "$ref"
  fi
  ok "$name"
}
graph_case float nchw 4 0 6
graph_case float nchw 0 4 0 EMU_CUDNN_NO_FUSION_ENGINE=1
graph_case float nchw 0 0 0 CONVBN_BACKEND_GRAPH=0
graph_case half nhwc 4 0 6
graph_case half nhwc 0 4 0 EMU_CUDNN_NO_FUSION_ENGINE=1
check "backend_seq --diff 200: every pair through a fused backend graph (32-entry cache evicting)" \
  bash -c "CONVBN_MODE=fuse CONVBN_STATS=1 LD_PRELOAD='$preload' '$bin/backend_seq' --diff 200 2>&1 |
    grep -Eq '^convbn: +pairs fused as backend graphs +200\$'"

# Threads sharing the shim's backend state (descriptor shadows, held plans, the per-stream
# planner, the fused-graph cache, scratch memory): backend_seq --threads 4 runs the whole
# network in 4 threads at once, each with its own handle, stream, plan cache and data, every
# thread's conv pending together (the threads step through barriers).  All 6N pairs fuse as
# backend graphs; outputs byte-identical to the same work with the threads run one after
# another (--serial 1) under the shim, within tolerance of the threaded run without it.
# threads_case BN TYPE LAYOUT
threads_case() {
  local type=$2 n=4 run=$tmp/thr.$1.$2.$3
  local pairs=$((6 * n)) args=(--threads "$n" --bn "$1" --type "$2" --layout "$3")
  local name="backend_seq ${args[*]}: $pairs pairs fused as backend graphs, as --serial 1"
  "$bin/backend_seq" "${args[@]}" --out "$run.base" >"$run.base.out" 2>&1 ||
    { fail "$name (without shim)" "$run.base.out"; return; }
  for serial in 0 1; do
    CONVBN_MODE=fuse CONVBN_STATS=1 CONVBN_LOG_FILE="$run.$serial.log" LD_PRELOAD="$preload" \
      "$bin/backend_seq" "${args[@]}" --serial "$serial" --out "$run.$serial" \
      --expect-pairs "$pairs" --expect-fused "$pairs" >"$run.$serial.out" 2>&1 ||
      { fail "$name (under shim, --serial $serial)" "$run.$serial.out"; return; }
    cmp -s "$run.base.out" "$run.$serial.out" ||
      { fail "$name: stdout differs (--serial $serial)" "$run.$serial.out"; return; }
    grep -Eq "^convbn: +pairs fused as backend graphs +$pairs\$" "$run.$serial.log" ||
      { fail "$name: summary (--serial $serial)" "$run.$serial.log"; return; }
  done
  cmp -s "$run.1" "$run.0" || { fail "$name: threaded outputs differ from the serial run"; return; }
  "$bin/close_enough" "$type" "$(tolerance "$type")" "$run.0" "$run.base" >"$run.cmp" ||
    { fail "$name: fused outputs out of tolerance" "$run.cmp"; return; }
  ok "$name"
}
for bn in legacy backend; do
  threads_case "$bn" float nchw
  threads_case "$bn" half nhwc
done

# A driver-API launch (cuLaunchKernel, as Triton's launchers make it) reads y between the conv
# and its BN (tests/e2e/driver_launch.c, linked with the emulated libcuda.so.1): the deferred
# conv runs first, the probe holds its result, byte-identical to the run without the shim.
driver_case() {
  local name="driver_launch: cuLaunchKernel flushes the deferred conv" run=$tmp/dl.$RANDOM
  "$bin/driver_launch" --out "$run.base" >"$run.out" 2>&1 ||
    { fail "$name (without shim)" "$run.out"; return; }
  CONVBN_MODE=fuse CONVBN_STATS=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload" \
    "$bin/driver_launch" --out "$run.bin" >"$run.out" 2>&1 ||
    { fail "$name (under shim)" "$run.out"; return; }
  cmp -s "$run.base" "$run.bin" || { fail "$name: outputs differ from the run without the shim"; return; }
  grep -Eq '^convbn: +flushed by cuLaunchKernel +1$' "$run.log" ||
    { fail "$name: summary does not match /flushed by cuLaunchKernel +1/" "$run.log"; return; }
  ok "$name"
}
driver_case
# Sanitizer builds: every shim variant pack and every plan whose destroy was postponed is
# destroyed (LeakSanitizer sees the emulation's descriptors).
if [ -n "${SAN:-}" ]; then
  check "backend_seq: no shim pack or held plan leaks (LeakSanitizer)" env ASAN_OPTIONS=detect_leaks=1 \
    CONVBN_MODE=fuse LD_PRELOAD="$preload" "$bin/backend_seq" --expect-fused 6
fi

# The precise flush rule (CONVBN_FLUSH=precise, src/precise.c): a kernel or async copy whose
# arguments do not point into the pending conv's buffers lets the pair fuse (the inverse-std
# kernel of --bn-kernel 1 points at var and inv only); one
# whose arguments point at y (reads, writes, adds a conv bias) still flushes, exactly.
CONVBN_FLUSH=precise bkbn_case fuse 6 6 "--bn backend --bn-kernel 1" '^convbn: +fused +6$'
# An async copy of an unrelated buffer between conv and BN: precise lets the pairs fuse, the
# conservative rule runs each conv first (exact answer).
CONVBN_FLUSH=precise bkbn_case fuse 6 6 "--hazard 2" '^convbn: +fused +6$'
bkbn_case fuse 0 0 "--hazard 2" '^convbn: +flushed by cudaMemcpyAsync +6$'
CONVBN_FLUSH=precise bkbn_case fuse 6 6 "--bn backend --bn-kernel 1 --type half --layout nhwc" \
  '^convbn: +fused +6$'
for scenario in kernel-reads-y kernel-writes-y kernel-adds-bias; do
  hazard_case "$scenario" exact 'flushed by cudaLaunchKernel +1$' CONVBN_MODE=fuse \
    CONVBN_FLUSH=precise
done

# CONVBN_VERIFY=1 on backend pairs (src/verify.c): a backend conv reruns its held plan with a
# second shim variant pack writing shim scratch, a backend BN reruns the program's own plan
# with a shim pack reading and writing scratch.  Every fused pair is verified (backend_seq
# --expect-verified checks the counters), one verify line per pair signature, the pair lines
# name the BN form (eps=1e-05, or eps=n/a var=inv_std for a backend BN) and the summary's
# worst relative error is within 2e-6 (float; 4e-3 half).  (There is no way to corrupt a
# fused result on purpose: the legacy verify test has none either.)
# verify_case API EPS_REGEX "FLAGS"
verify_case() {
  local api=$1 eps=$2 flags=$3 run=$tmp/vf.$RANDOM$RANDOM limit=2e-6
  local name="backend_seq $flags CONVBN_VERIFY=1: 6 pairs verified"
  case "$flags" in *half*) limit=4e-3 ;; esac
  # shellcheck disable=SC2086
  CONVBN_MODE=fuse CONVBN_VERIFY=1 CONVBN_LOG=1 CONVBN_LOG_FILE="$run.log" LD_PRELOAD="$preload" \
    "$bin/backend_seq" $flags --expect-pairs 6 --expect-fused 6 --expect-verified 6 \
    >"$run.out" 2>&1 || { fail "$name (under shim)" "$run.out"; return; }
  local pairs verifies rel
  pairs=$(grep -Ec "^convbn: pair #[0-9]+ api=$api .* bn=spatial eps=$eps -> fused at " "$run.log")
  verifies=$(grep -Ec '^convbn: verify pair #[0-9]+: max abs error [0-9.e+-]+, max rel error ' "$run.log")
  rel=$(sed -En 's/^convbn: +verified pairs +6 \(max abs error [0-9.e+-]+, max rel error ([0-9.e+-]+)\)$/\1/p' "$run.log")
  if [ "$pairs" != 4 ] || [ "$verifies" != 4 ] || [ -z "$rel" ] ||
      ! awk -v r="$rel" -v l="$limit" 'BEGIN { exit !(r + 0 <= l + 0) }'; then
    fail "$name: pair lines=$pairs verify lines=$verifies max rel error=$rel (limit $limit)" "$run.log"
    return
  fi
  ok "$name"
}
verify_case backend '1e-05' ""
verify_case backend 'n/a var=inv_std' "--bn backend"
verify_case backend 'n/a var=inv_std' "--bn backend --type half --layout nhwc"
verify_case legacy 'n/a var=inv_std' "--conv legacy --bn backend"
# A legacy conv (cudnnConvolutionForward) before a backend BN inference graph: the pair fuses,
# reported with the conv's api (legacy), within tolerance of the unfused run and, over 200
# random geometries, of the naive double reference (2e-6 float, 4e-3 half).
bkbn_case fuse 6 6 "--conv legacy --bn backend" '^convbn: +fused +6$' \
  '^convbn: pair #1 api=legacy conv=forward .* eps=n/a var=inv_std -> fused at ' \
  '^convbn: +by API: legacy 6 seen, 6 fused; backend 0 seen, 0 fused$'
bkbn_case fuse 6 6 "--conv legacy --bn backend --type half --layout nhwc" '^convbn: +fused +6$'
# PyTorch with TORCH_CUDNN_V8_API_DISABLED=1: legacy convs (descriptors per call, math type,
# cudnnGetConvolutionForwardAlgorithm_v7's list, workspace query) before legacy BNs.
bkbn_case fuse 6 6 "--conv legacy" '^convbn: +fused +6$' \
  '^convbn: +by API: legacy 6 seen, 6 fused; backend 0 seen, 0 fused$'
bkbn_case fuse 6 6 "--conv legacy --type half --layout nhwc" '^convbn: +fused +6$'
# A conv bias added by its own kernel on y (PyTorch's output.add_(bias)) between a backend
# conv and its BN: the kernel's arguments point into y, so both rules run the conv first;
# outputs byte-identical to the run without the shim.
for rule in conservative precise; do
  check "backend_seq --hazard 3: a bias-add kernel on y flushes the backend conv ($rule)" bash -c "
    '$bin/backend_seq' --hazard 3 --out '$tmp/h3.base' >/dev/null &&
    CONVBN_FLUSH=$rule CONVBN_MODE=fuse CONVBN_STATS=1 LD_PRELOAD='$preload' \
      '$bin/backend_seq' --hazard 3 --out '$tmp/h3.$rule' --expect-fused 0 2>'$tmp/h3.$rule.log' \
      >/dev/null &&
    cmp '$tmp/h3.base' '$tmp/h3.$rule' &&
    grep -Eq '^convbn: +flushed by cudaLaunchKernel +6\$' '$tmp/h3.$rule.log'"
done
check "backend_seq --diff 200 --conv legacy: every random legacy conv -> BN pair fused" \
  env CONVBN_MODE=fuse LD_PRELOAD="$preload" "$bin/backend_seq" --diff 200 --conv legacy \
  --expect-pairs 200 --expect-fused 200

# CONVBN_MAX_DEVICE_MB caps the shim's own device memory: with no room for W' and b' (0 or
# 1 MiB) or for any fused workspace (2 MiB: the backend graph's and the legacy algorithms'),
# every pair is reported `memory-cap` and runs unfused, byte-identical to the run without the
# shim, and the high-water mark stays within the cap.
# cap_case PROGRAM PAIRS MB
cap_case() {
  local prog=$1 pairs=$2 mb=$3 run=$tmp/cap.$1.$3
  local name="$prog CONVBN_MAX_DEVICE_MB=$mb: every pair memory-cap, outputs unchanged"
  "$bin/$prog" --out "$run.base" >/dev/null 2>&1 || { fail "$name (without shim)"; return; }
  CONVBN_MODE=fuse CONVBN_MAX_DEVICE_MB=$mb CONVBN_STATS=1 CONVBN_LOG_FILE="$run.log" \
    LD_PRELOAD="$preload" "$bin/$prog" --out "$run.bin" >"$run.out" 2>&1 ||
    { fail "$name (under shim)" "$run.out"; return; }
  cmp -s "$run.base" "$run.bin" || { fail "$name: outputs differ"; return; }
  local high
  high=$(sed -n 's/^convbn:   shim device memory high-water \([0-9]*\) bytes.*/\1/p' "$run.log")
  if ! grep -Eq "^convbn: +not fused: memory-cap +$pairs\$" "$run.log" ||
     [ "${high:-x}" -gt $((mb << 20)) ] 2>/dev/null || [ -z "$high" ]; then
    fail "$name: summary (high-water ${high:-?})" "$run.log"; return
  fi
  ok "$name"
}
cap_case resnet_seq 15 0
cap_case backend_seq 6 0
cap_case backend_seq 6 2

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
