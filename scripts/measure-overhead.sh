#!/usr/bin/env bash
# `make bench-overhead`: the shim's host overhead, counted in instructions with callgrind, and
# its device memory over a long replay (issue budgets: at most 300 instructions per
# intercepted call that does not pair, 400 per cudnnBackendExecute that does not pair, at
# most 3,000 per fused pair beyond the emulated compute; shim device memory under
# CONVBN_MAX_DEVICE_MB and not growing).  Rows without a budget are printed for reference:
# a recognised backend conv with no consumer (deferred, then flushed by the next execute),
# a new variant pack per call, and the fused pairs whose conv comes through the backend API
# (followed by a legacy or a backend BN).
#
# Runs bench/overhead (`calls N`, `pairs N`, `backend-pairs-legacy-bn N`,
# `backend-pairs-backend-bn N`) under valgrind --tool=callgrind without the shim
# and with it (CONVBN_MODE=fuse), each with N1 and N2 iterations, and reads the inclusive
# cost of the bench's measure_* loop functions with callgrind_annotate.  Per call:
#     ((shim N2 - shim N1) - (none N2 - none N1)) / (N2 - N1)
# so start-up, first-call and exit costs cancel.  Checks that the summary of each backend
# pairs run (CONVBN_STATS=1, no valgrind) counts every pair fused as a backend graph.  Then
# runs `replay` (not under valgrind) for the device high-water mark.  Prints the table and
# writes it to $BUILD/bench/overhead.txt.
#
# Environment: BUILD (default build), OVERHEAD_N1 / OVERHEAD_N2 (default 1000 / 2000),
# OVERHEAD_REPLAY (default 100000), CONVBN_MAX_DEVICE_MB (the cap, passed to the shim).
# Exit status: 0 within budget (or "skipped" without valgrind), 1 over a budget or a failed
# replay check, 2 on errors.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
build=${BUILD:-build}
n1=${OVERHEAD_N1:-1000}
n2=${OVERHEAD_N2:-2000}
replay=${OVERHEAD_REPLAY:-100000}
pair_budget=3000
bench=$build/bench/overhead
report=$build/bench/overhead.txt

die() { printf 'measure-overhead: %s\n' "$*" >&2; exit 2; }

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
  echo "measure-overhead: skipped: valgrind (with callgrind_annotate) is not installed"
  exit 0
fi
if [ ! -x "$bench" ] || [ ! -f "$build/libconvbn_shim.so" ]; then
  die "build first: make bench-overhead"
fi
[ "$n2" -gt "$n1" ] 2>/dev/null || die "OVERHEAD_N2 ($n2) must be greater than OVERHEAD_N1 ($n1)"
shim=$(realpath "$build/libconvbn_shim.so")
bench_path=$(realpath "$bench")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every run gets the same environment apart from LD_PRELOAD: no CONVBN_* setting of the
# caller's (logging, tracing or verification would be measured too) except the cap.
clean_env=(env -u LD_PRELOAD)
while IFS= read -r var; do
  [ "$var" = CONVBN_MAX_DEVICE_MB ] || clean_env+=(-u "$var")
done < <(compgen -e | grep '^CONVBN_' || true)
clean_env+=(CONVBN_MODE=fuse)

# profile MODE N VARIANT [FUNCTION]: runs `overhead MODE N` under callgrind and leaves the
# inclusive cost of every function, one "IR FUNCTION OBJECT" line each, in
# $tmp/MODE.VARIANT.N (with FUNCTION: counting only inside it, in $tmp/MODE.VARIANT.N.FUNCTION).
profile() {
  local mode=$1 n=$2 variant=$3 fn=${4:-} out=$tmp/$1.$3.$2${4:+.$4}
  local preload=() only=()
  [ "$variant" = shim ] && preload=("LD_PRELOAD=$shim")
  [ -n "$fn" ] && only=("--toggle-collect=$fn")
  # Run and annotate outside the source tree: from inside it callgrind_annotate names a
  # source file both relative and absolute and splits a function's cost between the names.
  if ! (cd "$tmp" && "${clean_env[@]}" "${preload[@]}" valgrind --tool=callgrind \
      "${only[@]}" --callgrind-out-file="$out.cg" "$bench_path" "$mode" "$n") >"$out.log" 2>&1; then
    sed 's/^/  /' "$out.log" | tail -20 >&2
    die "overhead $mode $n ($variant) failed under valgrind"
  fi
  (cd "$tmp" && callgrind_annotate --auto=no --threshold=100 --inclusive=yes "$out.cg") |
    awk 'match($0, /^ *[0-9,]+ +\([^)]*\) +/) {
           ir = substr($0, 1, RLENGTH); sub(/ *\(.*/, "", ir); gsub(/[ ,]/, "", ir)
           rest = substr($0, RLENGTH + 1)
           obj = "-"
           if (match(rest, / \[[^]]*\]$/)) {
             obj = substr(rest, RSTART + 2, RLENGTH - 3); rest = substr(rest, 1, RSTART - 1)
             sub(/.*\//, "", obj)
           }
           sub(/.*:/, "", rest)
           if (obj != "") print ir, rest, obj
         }' >"$out"
}

# ir MODE VARIANT N FUNCTION OBJECT: inclusive cost of FUNCTION in OBJECT (0 when absent).
ir() {
  awk -v f="$4" -v o="$5" '$2 == f && $3 == o { s += $1 } END { print s + 0 }' "$tmp/$1.$2.$3"
}

# per_iter MODE VARIANT FUNCTION OBJECT: cost per iteration from the N1 and N2 runs.
per_iter() {
  local a b
  a=$(ir "$1" "$2" "$n1" "$3" "$4"); b=$(ir "$1" "$2" "$n2" "$3" "$4")
  awk -v a="$a" -v b="$b" -v d=$((n2 - n1)) 'BEGIN { printf "%.1f", (b - a) / d }'
}

# The emulated compute of a pair: the emulation's compute entry points (the fused path runs
# conv-bias-activation, the unfused one conv and BN) and the fold's host twin, which stands
# in for the fold kernel.  Host-only cuDNN queries the shim makes are not compute.
# A backend pair runs cudnnBackendExecute of the emulation: without the shim the conv plan
# (and the backend BN plan), with it the shim's fused graph (conv + pointwise add); the
# emulation's execute entry point, with everything under it, counts as compute in both runs.
compute_fns="cudnnConvolutionForward cudnnConvolutionBiasActivationForward
  cudnnBatchNormalizationForwardInference cudnnAddTensor cudnnActivationForward
  cudnnBackendExecute"
# compute_per_pair MODE VARIANT: emulated compute per pair of a pairs mode's run.
compute_per_pair() {
  local total=0 fn v
  for fn in $compute_fns; do
    v=$(per_iter "$1" "$2" "$fn" libcudnn.so.9)
    total=$(awk -v t="$total" -v v="$v" 'BEGIN { print t + v }')
  done
  v=$(per_iter "$1" "$2" convbn_fold_host libconvbn_shim.so)
  awk -v t="$total" -v v="$v" 'BEGIN { printf "%.1f", t + v }'
}

# pair_rows: the pair tables, one "MODE|FUNCTION|BUDGET|LABEL" line per pairs mode of
# bench/overhead.c (one measure_* function each; BUDGET - for a row printed without one).
pair_rows() {
  cat <<'ROWS'
pairs|measure_pairs|3000|conv -> BN pair, 1x1x1x1, 1x1 filter
backend-pairs-legacy-bn|measure_backend_pair_legacy_bn|-|fused backend conv -> legacy BN pair
backend-pairs-backend-bn|measure_backend_pair_backend_bn|-|fused backend conv -> backend BN pair
ROWS
}
pair_modes=$(pair_rows | cut -d'|' -f1)

# hot_spots MODE [FUNCTION]: the shim's functions by inclusive cost per iteration of MODE
# (shim runs; with FUNCTION, of the runs that counted only inside it).
hot_spots() {
  join -a1 -a2 -e 0 -o 0,1.2,2.2 \
    <(awk '$3 == "libconvbn_shim.so" { s[$2] += $1 } END { for (f in s) print f, s[f] }' \
        "$tmp/$1.shim.$n1${2:+.$2}" | sort) \
    <(awk '$3 == "libconvbn_shim.so" { s[$2] += $1 } END { for (f in s) print f, s[f] }' \
        "$tmp/$1.shim.$n2${2:+.$2}" | sort) |
    awk -v d=$((n2 - n1)) '{ v = ($3 - $2) / d; if (v >= 1) printf "%10.1f  %s\n", v, $1 }' |
    sort -rn | head -16
}

# calls_rows: the `calls` table, one "FUNCTION|BUDGET|LABEL" line per measure_* function of
# bench/overhead.c (BUDGET - for a row printed without one).
calls_rows() {
  cat <<'ROWS'
measure_cudnnSetStream|300|cudnnSetStream (host-only, generated wrapper)
measure_cudnnGetTensorNdDescriptor|300|cudnnGetTensorNdDescriptor (host-only, generated wrapper)
measure_cudnnActivationForward|300|cudnnActivationForward (work, generated wrapper)
measure_cudnnAddTensor|300|cudnnAddTensor (work, custom hook)
measure_cudaStreamSynchronize|300|cudaStreamSynchronize (CUDA runtime)
measure_cudaMemsetAsync|300|cudaMemsetAsync (CUDA runtime)
measure_backend_execute_dgrad|400|cudnnBackendExecute, conv backward-data plan (not paired)
measure_backend_execute_epilogue|400|cudnnBackendExecute, conv + bias-add plan (not paired)
measure_backend_execute_deferred|-|cudnnBackendExecute, lone conv fwd: deferred + flushed
measure_backend_set_get|300|cudnnBackendSetAttribute + GetAttribute (variant pack)
measure_backend_variant_pack|-|new variant pack: create, 3 sets, finalize, destroy
ROWS
}

echo "measure-overhead: callgrind runs (N1=$n1, N2=$n2; without the shim and with CONVBN_MODE=fuse)"
for mode in calls $pair_modes; do
  for n in "$n1" "$n2"; do
    for variant in none shim; do
      profile "$mode" "$n" "$variant"
    done
  done
done

# Every loop must be visible by name, else the table would silently read zeros.
for mode in calls $pair_modes; do
  for n in "$n1" "$n2"; do
    for variant in none shim; do
      want=1; [ "$mode" = calls ] && want=$(calls_rows | wc -l)
      [ "$(awk '$2 ~ /^measure_/ && $3 == "overhead"' "$tmp/$mode.$variant.$n" | wc -l)" = "$want" ] ||
        die "callgrind_annotate did not name the measure_* functions of $mode $n ($variant)"
    done
  done
done

over=0
over_fns=()
{
  echo "convbn-shim host overhead (callgrind, instructions; shim minus no shim, per call,"
  echo "from $n1 and $n2 iterations so that start-up and exit cancel; CPU emulation)"
  echo
  printf '%-58s %10s %10s %8s %7s\n' "intercepted call that does not pair" "no shim" "shim" "added" "budget"
  while IFS='|' read -r fn budget label; do
    base=$(per_iter calls none "$fn" overhead)
    with=$(per_iter calls shim "$fn" overhead)
    added=$(awk -v a="$with" -v b="$base" 'BEGIN { printf "%.1f", a - b }')
    verdict=
    if [ "$budget" != - ]; then
      verdict=ok
      if awk -v a="$added" -v m="$budget" 'BEGIN { exit !(a > m) }'; then
        verdict=OVER; over=1; over_fns+=("$fn")
      fi
    fi
    printf '%-58s %10s %10s %8s %7s %s\n' "$label" "$base" "$with" "$added" "$budget" "$verdict"
  done < <(calls_rows)
  echo "  Backend rows: plans and packs built up front on 1x1x1x1 tensors, nothing pending before"
  echo "  each execute.  The lone conv forward is recognised and deferred; the next execute runs"
  echo "  it (through the shim's own variant pack), so its row is one deferral plus one flush."
  echo
  while IFS='|' read -r mode fn budget label; do
    base=$(per_iter "$mode" none "$fn" overhead)
    with=$(per_iter "$mode" shim "$fn" overhead)
    cbase=$(compute_per_pair "$mode" none)
    cwith=$(compute_per_pair "$mode" shim)
    raw=$(awk -v a="$with" -v b="$base" 'BEGIN { printf "%.1f", a - b }')
    beyond=$(awk -v a="$with" -v b="$base" -v ca="$cwith" -v cb="$cbase" \
      'BEGIN { printf "%.1f", (a - ca) - (b - cb) }')
    worst=$(awk -v r="$raw" -v b="$beyond" 'BEGIN { print (r > b) ? r : b }')
    verdict=
    if [ "$budget" != - ]; then
      verdict=ok
      if awk -v a="$worst" -v m="$budget" 'BEGIN { exit !(a > m) }'; then
        verdict=OVER; over=1
      fi
    fi
    printf '%-58s %10s %10s %8s %7s\n' "$label" "no shim" "shim" "added" "budget"
    printf '%-58s %10s %10s %8s\n' "  everything ($fn)" "$base" "$with" "$raw"
    printf '%-58s %10s %10s\n' "  of which emulated compute" "$cbase" "$cwith"
    printf '%-58s %10s %10s %8s %7s %s\n' "  host, beyond the emulated compute" \
      "$(awk -v a="$base" -v c="$cbase" 'BEGIN { printf "%.1f", a - c }')" \
      "$(awk -v a="$with" -v c="$cwith" 'BEGIN { printf "%.1f", a - c }')" "$beyond" \
      "$budget" "$verdict"
  done < <(pair_rows)
  echo "  The fused path's emulated compute (fold host twin + conv-bias-activation, or the fused"
  echo "  backend graph) differs from the unfused one (conv + BN) at this geometry; a budget is"
  echo "  checked on the larger of \"everything\" and \"beyond the emulated compute\", so that"
  echo "  difference never favours the shim.  Emulated compute: the emulation's conv,"
  echo "  conv-bias-activation, BN, add and activation entry points and its cudnnBackendExecute"
  echo "  (the unfused conv and BN plans; the shim's fused conv + add graph), and convbn_fold_host;"
  echo "  the shim's host-only cuDNN queries and backend descriptor calls count as overhead."
  echo "  Backend pairs: conv and BN plans built up front; a new variant pack per execute (create,"
  echo "  3 or 6 sets, finalize, destroy), as PyTorch builds one per call, in both runs; the"
  echo "  backend BN is one NORM_FORWARD (BATCH_NORM, INFERENCE) fed an inverse std made up front."
  echo "  Every pair is checked fused as the shim's fused backend graph (counters and summary)."
  for mode in $pair_modes; do
    [ "$mode" = pairs ] && continue
    echo
    echo "$mode: the shim's functions by inclusive instructions per pair"
    echo "(shim run, N2 minus N1; including the emulation calls they make, the fused graph's"
    echo "execute too)"
    hot_spots "$mode"
  done
} >"$tmp/table"

# The summary's count of pairs fused as backend graphs, from one run per backend pairs mode
# outside valgrind (the bench itself checks the counters in every run).
for mode in $pair_modes; do
  [ "$mode" = pairs ] && continue
  "${clean_env[@]}" "LD_PRELOAD=$shim" CONVBN_STATS=1 "$bench_path" "$mode" "$n1" \
    >"$tmp/$mode.stats.out" 2>"$tmp/$mode.stats.err" || die "overhead $mode $n1 failed"
  grep -Eq "^convbn: +pairs fused as backend graphs +$n1\$" "$tmp/$mode.stats.err" || {
    sed 's/^/  /' "$tmp/$mode.stats.err" >&2
    die "overhead $mode $n1: the summary does not show $n1 pairs fused as backend graphs"
  }
done

echo "measure-overhead: replay of $replay pairs under the shim (no valgrind)"
replay_status=0
"${clean_env[@]}" "LD_PRELOAD=$shim" "$bench_path" replay "$replay" >"$tmp/replay.out" \
  2>"$tmp/replay.err" || replay_status=$?
{
  echo
  if [ "$replay_status" = 0 ]; then
    echo "device memory, replay of $replay fused pairs (6 geometries, 2 streams): ok"
  else
    echo "device memory, replay of $replay fused pairs: FAILED (exit $replay_status)"
  fi
  sed 's/^overhead: /  /' "$tmp/replay.out"
  sed 's/^/  /' "$tmp/replay.err"
} >>"$tmp/table"
[ "$replay_status" = 0 ] || over=1

if [ "$over" = 1 ]; then
  {
    echo
    echo "over budget: the shim's functions by inclusive instructions per iteration (including"
    echo "the emulation calls they make)"
    echo "(shim runs, N2 minus N1; calls mode sums every kind measured in that run)"
    for mode in calls $pair_modes; do
      echo "  $mode:"
      hot_spots "$mode" | sed 's/^/  /'
    done
    for fn in "${over_fns[@]}"; do
      profile calls "$n1" shim "$fn"
      profile calls "$n2" shim "$fn"
      echo "  calls, $fn alone (counted only inside it):"
      hot_spots calls "$fn" | sed 's/^/  /'
    done
  } >>"$tmp/table"
fi

mkdir -p "$(dirname "$report")"
cp "$tmp/table" "$report"
cat "$report"
echo "measure-overhead: written to $report"
if [ "$over" = 1 ]; then
  echo "measure-overhead: FAILED: over budget (see above)"
  exit 1
fi
echo "measure-overhead: within budget"
