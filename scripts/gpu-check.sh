#!/usr/bin/env bash
# GPU validation kit: proves the shim on real cuDNN and PyTorch in ONE call of the lent GPU
# machine (one H100, nvcc 13, python3 with torch, torchvision and pip's cuDNN 9; no
# internet) and writes a report under $OUT (./gpu-out when OUT is unset).
#
# That machine has no uthash, libunwind, Check or json-c development packages, so the build
# travels with the call.  On the build machine, first:
#     make e2e-check                 # shim, emulation, e2e programs, libc10 stand-in, bench
#     scripts/gpu-check.sh --stage   # copies the libraries the shim and the bench need
#                                    # beyond glibc (libunwind, liblzma, json-c) into
#                                    # build/gpu-kit/lib and records the commit
# then the device tool's call:
#     run  command: bash scripts/gpu-check.sh   carry: ["build"]   timeout_s: 600
# (build/ must stay under the tool's 64 MiB: `du -sh build`; drop build/asan, build/tsan
# and build/fuzz if it does not.)  What comes back under $OUT: gpu-report.md, gpu-results.json,
# gpu-logs.tar.gz (every step's logs and results), traces-recorded.tar.gz (unpack into
# bench/traces/recorded/), gpu-check.log.  docs/gpu-results.md says what to do with them.
#
# Steps, in this order, each under a time limit; the report is written whatever happens:
#   preflight    machine, versions; the shim loads; the programs find the real libraries
#   numerics     a. fused vs unfused on real cuDNN: differential, resnet_seq, backend_seq (the
#                backend graph path: graphs built or refused, build times), hazards
#   conformance  b. the e2e programs over the emulation vs over real cuDNN
#   discovery    c. PyTorch's cuDNN and CUDA runtime calls for conv, bias, BN, backward
#   models       d. torchvision models: pairs fused, output error, images/s (none/shim/folded)
#   training     e. frozen-BN training: bit-identical with the shim; kept-for-gradients bytes
#   traces       f. traces of the models recorded, checked and replayed by convbn-bench
#
# usage: scripts/gpu-check.sh [options]
#   --steps LIST      steps to run, by name or letter a-f, comma-separated (default: all;
#                     preflight always runs)
#   --out DIR         where the results go (default: $OUT, else ./gpu-out)
#   --build DIR       the build to test (default: build)
#   --budget S        seconds for all steps together (default 570; the call allows 600)
#   --timeout STEP=S  one step's limit in seconds (repeatable)
#   --models LIST     torchvision models of steps d and f (comma-separated)
#   --quick           fewer cases, iterations and models: a smoke run
#   --rebuild         rebuild the shim and the programs on this machine against the cuDNN
#                     headers of pip's nvidia.cudnn package (needs the dev packages above)
#   --emulation       run over build/emu instead of the real libraries: tests the kit on a
#                     machine without a GPU; its results say nothing about real cuDNN
#   --keep-work       keep OUT/work (by default packed into gpu-logs.tar.gz, then removed)
#   --stage           on the build machine: prepare build/gpu-kit for the call, then exit
#   --dry-run         print every command each step would run; run nothing; exit 0
#   -h, --help        this text
# Exit status: 0 every step passed; 1 a step failed, errored, timed out or was skipped;
# 2 usage or set-up error.
set -euo pipefail

readonly ALL_STEPS=(numerics conformance discovery models training traces)
readonly RESERVE_S=25           # kept back from the budget for the report and the packing
declare -A STEP_LIMIT=([preflight]=60 [numerics]=150 [conformance]=60 [discovery]=90
                       [models]=240 [training]=120 [traces]=90)
# Opened with dlopen by the shim (call sites), so ldd does not list them: staged as well.
readonly DLOPENED_LIBS=(libunwind.so.8)
readonly SYSTEM_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+'\
'|libcudnn|libcudart)[.-]'

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$repo/gpu-out}
build=build
budget=570
models=""
steps_arg=""
quick=0 rebuild=0 emulation=0 keep_work=0 stage=0 dry_run=0
work=""
started_us=0
STEPS=()

say() { printf 'gpu-check: %s\n' "$*"; }
warn() { printf 'gpu-check: warning: %s\n' "$*" >&2; }
die() { printf 'gpu-check: error: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '/^# usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# now_us: prints the wall-clock time in microseconds.
now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s\n' "$t"; }

# elapsed_s START_US: prints the seconds since START_US with one decimal.
elapsed_s() {
  local d=$(( $(now_us) - $1 ))
  printf '%d.%d\n' $((d / 1000000)) $(((d / 100000) % 10))
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --steps) steps_arg=${2:?--steps needs a list}; shift ;;
      --out) out=${2:?--out needs a directory}; shift ;;
      --build) build=${2:?--build needs a directory}; shift ;;
      --budget) budget=${2:?--budget needs seconds}; shift ;;
      --timeout) set_timeout "${2:?--timeout needs STEP=SECONDS}"; shift ;;
      --models) models=${2:?--models needs a list}; shift ;;
      --quick) quick=1 ;;
      --rebuild) rebuild=1 ;;
      --emulation) emulation=1 ;;
      --keep-work) keep_work=1 ;;
      --stage) stage=1 ;;
      --dry-run) dry_run=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ $budget =~ ^[0-9]+$ ]] || die "--budget expects whole seconds, got '$budget'"
}

set_timeout() {
  local step=${1%%=*} secs=${1#*=}
  [[ -n ${STEP_LIMIT[$step]:-} && $secs =~ ^[0-9]+$ ]] ||
    die "bad --timeout '$1' (STEP=SECONDS, STEP one of ${!STEP_LIMIT[*]})"
  STEP_LIMIT[$step]=$secs
}

# step_name ITEM: prints the step an item of --steps names (a name or a letter a-f).
step_name() {
  case $1 in
    a) echo numerics ;; b) echo conformance ;; c) echo discovery ;;
    d) echo models ;; e) echo training ;; f) echo traces ;; *) echo "$1" ;;
  esac
}

# select_steps: sets STEPS to the steps asked for by --steps (all by default), in the
# kit's order; dies on an unknown name.
select_steps() {
  local want=() item step
  STEPS=()
  if [ -z "$steps_arg" ]; then
    STEPS=("${ALL_STEPS[@]}")
    return
  fi
  IFS=, read -r -a want <<<"$steps_arg"
  for item in "${want[@]}"; do
    item=$(step_name "$item")
    [ "$item" = preflight ] && continue
    [[ " ${ALL_STEPS[*]} " == *" $item "* ]] || die "unknown step '$item' (steps: ${ALL_STEPS[*]} or a-f)"
  done
  for step in "${ALL_STEPS[@]}"; do
    for item in "${want[@]}"; do
      if [ "$(step_name "$item")" = "$step" ]; then STEPS+=("$step"); break; fi
    done
  done
}

# missing_libs FILE [DIR]: prints the sonames ldd cannot resolve for FILE, with DIR in
# front of the inherited LD_LIBRARY_PATH.
missing_libs() {
  local path=${2:-}
  if [ -n "${LD_LIBRARY_PATH:-}" ]; then path=${path:+$path:}$LD_LIBRARY_PATH; fi
  LD_LIBRARY_PATH=$path ldd "$1" 2>/dev/null | awk '/not found/ { print $1 }' || true
}

# known_lib SONAME: true when the dynamic linker's cache knows SONAME on this machine.
known_lib() {
  ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l { found = 1 } END { exit !found }'
}

# stage_deps FILE WHY: copies the non-system libraries FILE links into BUILD/gpu-kit/lib.
stage_deps() {
  local file=$1 why=$2 lib path
  while read -r lib path; do
    [[ $lib =~ $SYSTEM_LIBS ]] && continue
    [[ $path == "$(realpath "$build")"/* ]] && continue
    cp -L "$path" "$build/gpu-kit/lib/$lib"
    say "staged $lib (from $path) for $why"
  done < <(ldd "$file" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
}

# stage: on the build machine, copies the non-system libraries the shim and the bench link
# or open (those a bare GPU image may lack) into BUILD/gpu-kit/lib, and records the commit.
stage() {
  local kit_dir=$build/gpu-kit lib path size
  [ -f "$build/libconvbn_shim.so" ] || die "no $build/libconvbn_shim.so: run 'make e2e-check' first"
  rm -rf "$kit_dir"
  mkdir -p "$kit_dir/lib"
  for bin in "$build/libconvbn_shim.so" "$build/bench/convbn-bench"; do
    [ -f "$bin" ] || { warn "$bin not built: run 'make e2e-check' first"; continue; }
    stage_deps "$bin" "${bin##*/}"
  done
  for lib in "${DLOPENED_LIBS[@]}"; do
    path=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l { print $NF; exit }')
    if [ -z "$path" ]; then
      warn "$lib is not installed here: the shim will run without it where it is missing too"
      continue
    fi
    cp -L "$path" "$kit_dir/lib/$lib"
    say "staged $lib (from $path), opened by the shim with dlopen"
    stage_deps "$path" "$lib"
  done
  {
    printf 'commit=%s\n' "$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
    printf 'changed_files=%s\n' "$(git -C "$repo" status --porcelain 2>/dev/null | wc -l)"
    printf 'staged_at=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$kit_dir/source.txt"
  size=$(du -sm "$build" | awk '{ print $1 }')
  say "staged into $kit_dir: $(find "$kit_dir/lib" -type f -printf '%f ')"
  say "$build is ${size} MiB (the call carries at most 64 MiB in all)"
  if [ "$size" -gt 56 ]; then
    warn "$build is large: remove $build/asan, $build/tsan and $build/fuzz before the call, or carry less"
  fi
  say "now call the device tool: run command 'bash scripts/gpu-check.sh' with carry [\"${build#"$repo"/}\"]"
}

# use_staged_libs: links each library staged in BUILD/gpu-kit/lib that this machine lacks
# into WORK/libfallback, which the steps append to LD_LIBRARY_PATH (only libraries missing
# here are there, so nothing installed here is overridden).
use_staged_libs() {
  local file lib
  if [ ! -d "$build/gpu-kit/lib" ]; then
    say "no $build/gpu-kit/lib: run 'scripts/gpu-check.sh --stage' before the call"
    return 0
  fi
  for file in "$build/gpu-kit/lib"/*; do
    [ -e "$file" ] || continue
    lib=${file##*/}
    known_lib "$lib" && continue
    say "$lib is not installed here: using the copy staged in $build/gpu-kit/lib"
    [ "$dry_run" = 1 ] || ln -sf "$(realpath "$file")" "$work/libfallback/$lib"
  done
}

# check_loads NAME FILE: says whether every library FILE links resolves here (with the
# staged fallbacks).  Returns 1 after saying what is missing.
check_loads() {
  local name=$1 file=$2 lib still=()
  if [ ! -f "$file" ]; then
    say "$name: $file is not built"
    return 1
  fi
  if [ "$dry_run" = 1 ]; then
    mapfile -t still < <(missing_libs "$file")
    say "$name: not resolved on this machine: ${still[*]:-none}"
    return 0
  fi
  mapfile -t still < <(missing_libs "$file" "$work/libfallback")
  # libcudnn/libcudart of the e2e programs are found later, from pip's packages.
  for lib in "${still[@]}"; do
    [[ $lib =~ ^lib(cudnn|cudart)[.] ]] && continue
    say "$name: ERROR: $lib is missing here and was not staged: on the build machine run"
    say "  'scripts/gpu-check.sh --stage' before the call, or call with --rebuild"
    return 1
  done
  say "$name: every library it links resolves here"
}

# rebuild: rebuilds the shim, the emulation, the e2e programs and the bench here against
# the cuDNN headers of pip's nvidia.cudnn package (and CUDA_HOME's runtime headers).
rebuild() {
  local headers=(/usr/include/uthash.h /usr/include/libunwind.h /usr/include/check.h
                 /usr/include/json-c/json.h) missing=() h inc cuda_home merged targets=()
  for h in "${headers[@]}"; do [ -e "$h" ] || missing+=("$h"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "rebuild: ERROR: missing ${missing[*]} (uthash, libunwind, Check and json-c dev"
    say "  packages; this machine cannot install them): keeping the carried build"
    return 1
  fi
  inc=$(cd "$repo/scripts/gpu" && python3 -c 'import kit; print(kit.cudnn_include_dir() or "")')
  cuda_home=${CUDA_HOME:-/usr/local/cuda}
  merged=$work/cuda
  mkdir -p "$merged/include"
  ln -sf "$cuda_home"/include/* "$merged/include/"
  if [ -n "$inc" ]; then ln -sf "$inc"/* "$merged/include/"; fi
  [ -r "$merged/include/cudnn_version.h" ] || { say "rebuild: ERROR: no cuDNN headers found"; return 1; }
  for h in "$repo"/tests/e2e/*.c; do targets+=("$build/tests/e2e/$(basename "$h" .c)"); done
  targets+=("$build/tests/libc10.so" "$build/bench/convbn-bench")
  say "rebuild: CUDA_HOME=$merged (cuDNN headers from ${inc:-$cuda_home/include})"
  rm -f "$repo/build/config.mk"
  if ! (cd "$repo" && PATH=$cuda_home/bin:$PATH CUDA_HOME=$merged \
        timeout 300 make -j"$(nproc)" BUILD="$build" all "${targets[@]}") >"$work/logs/rebuild.log" 2>&1; then
    say "rebuild: ERROR: make failed (logs/rebuild.log):"
    tail -n 15 "$work/logs/rebuild.log"
    return 1
  fi
  say "rebuild: done"
}

# write_status STEP RC TIMED_OUT LIMIT DURATION [SKIPPED]: the step's status file.
write_status() {
  local skipped=${6:-}
  printf '{"step": "%s", "rc": %s, "timed_out": %s, "limit_s": %s, "duration_s": %s, "skipped": %s}\n' \
    "$1" "$2" "$3" "$4" "$5" "$([ -n "$skipped" ] && printf '"%s"' "$skipped" || printf null)" \
    >"$work/steps/$1.status.json"
}

# step_args: prints the common arguments of every step module, one per line.
step_args() {
  printf '%s\n' --build "$build" --work "$work" --out "$out"
  [ "$quick" = 1 ] && printf '%s\n' --quick
  [ "$emulation" = 1 ] && printf '%s\n' --emulation
  [ -n "$models" ] && printf '%s\n' --models "$models"
  return 0
}

# run_step STEP: runs scripts/gpu/STEP.py under its time limit, clipped to what is left of
# the budget; writes its status file.
run_step() {
  local step=$1 limit=${STEP_LIMIT[$1]} left start rc timed_out=false args=()
  left=$(( budget - ($(now_us) - started_us) / 1000000 - RESERVE_S ))
  if [ "$left" -lt 10 ]; then
    say "[$step] skipped: the budget of $budget s is spent"
    write_status "$step" null false "$limit" 0 "not run: the budget of $budget s was spent"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  mapfile -t args < <(step_args)
  say "[$step] start (limit $limit s)"
  start=$(now_us)
  set +e
  timeout --kill-after=5 "$limit" python3 "$repo/scripts/gpu/$step.py" "${args[@]}" \
    --deadline "$(( $(now_us) / 1000000 + limit - 4 ))" 2>&1 | tee "$work/logs/$step.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then timed_out=true; fi
  write_status "$step" "$rc" "$timed_out" "$limit" "$(elapsed_s "$start")"
  say "[$step] done in $(elapsed_s "$start") s (exit $rc$([ "$timed_out" = true ] && echo ', timed out'))"
}

# dry_run_all STEPS...: prints what each step would run.
dry_run_all() {
  local step args=()
  say "dry run: nothing is executed"
  say "repo $repo, build $build, out $out, budget $budget s, steps: preflight $*"
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    say "GPU: $(nvidia-smi -L | head -1)"
  else
    say "GPU: none here (no working nvidia-smi): a real run needs the lent GPU machine"
  fi
  use_staged_libs
  check_loads shim "$build/libconvbn_shim.so" || true
  check_loads convbn-bench "$build/bench/convbn-bench" || true
  [ "$rebuild" = 1 ] && say "would rebuild: make all, the e2e programs and the bench against pip's cuDNN headers"
  mapfile -t args < <(step_args)
  say "WORK below is the work directory, $out/work in a real run"
  for step in preflight "$@"; do
    say "step $step (limit ${STEP_LIMIT[$step]} s): python3 scripts/gpu/$step.py ${args[*]}"
    python3 "$repo/scripts/gpu/$step.py" "${args[@]}" --dry-run \
      --deadline "$(( $(now_us) / 1000000 + STEP_LIMIT[$step] ))"
  done
  say "then: python3 scripts/gpu/report.py --work $work --md $out/gpu-report.md --json $out/gpu-results.json"
  say "then: tar -czf $out/gpu-logs.tar.gz (work directory without *.pt and *.bin); remove $out/work"
}

# package: writes the report, packs the logs, removes the work directory.
package() {
  local steps_csv=$1 artifacts=(--artifact gpu-report.md --artifact gpu-results.json
                                 --artifact gpu-logs.tar.gz --artifact gpu-check.log)
  [ -f "$out/traces-recorded.tar.gz" ] && artifacts+=(--artifact traces-recorded.tar.gz)
  python3 "$repo/scripts/gpu/report.py" --work "$work" --md "$out/gpu-report.md" \
    --json "$out/gpu-results.json" --steps "preflight,$steps_csv" "${artifacts[@]}" ||
    say "ERROR: the report could not be written (logs are in gpu-logs.tar.gz)"
  tar -czf "$out/gpu-logs.tar.gz" -C "$work" --exclude='*.pt' --exclude='*.bin' \
    --exclude=libfallback --exclude=cuda . || say "warning: packing the logs failed"
  if [ "$(du -m "$out/gpu-logs.tar.gz" | awk '{ print $1 }')" -ge 15 ]; then
    say "gpu-logs.tar.gz is over 15 MiB: keeping only steps/ and logs/ in it"
    tar -czf "$out/gpu-logs.tar.gz" -C "$work" steps logs
  fi
  [ "$keep_work" = 1 ] || rm -rf "$work"
}

main() {
  parse_args "$@"
  cd "$repo"
  export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the tree
  [[ $build == /* ]] || build=$repo/$build
  [ "$stage" = 1 ] && { stage; return 0; }
  local step
  select_steps
  started_us=$(now_us)
  if [ "$dry_run" = 1 ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    dry_run_all "${STEPS[@]}"
    return 0
  fi
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  work=$out/work
  rm -rf "$work"
  mkdir -p "$work/steps" "$work/logs" "$work/libfallback"
  rm -f "$out"/gpu-report.md "$out"/gpu-results.json "$out"/gpu-logs.tar.gz "$out"/traces-recorded.tar.gz
  run_all 2>&1 | tee "$out/gpu-check.log"
  return "${PIPESTATUS[0]}"
}

# run_all: the real run: rebuild if asked, library checks, every step, the report.
run_all() {
  local step verdict
  say "repo $repo, build $build, out $out, budget $budget s, steps: preflight ${STEPS[*]}"
  [ "$emulation" = 1 ] && say "--emulation: the C steps run over $build/emu; PyTorch steps are unaffected"
  if [ "$rebuild" = 1 ]; then rebuild || true; fi
  use_staged_libs
  check_loads shim "$build/libconvbn_shim.so" || true
  check_loads convbn-bench "$build/bench/convbn-bench" || true
  run_step preflight
  for step in "${STEPS[@]}"; do run_step "$step"; done
  package "$(IFS=,; echo "${STEPS[*]}")"
  say "report: $out/gpu-report.md; summary: $out/gpu-results.json"
  verdict=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["overall"])' \
            "$out/gpu-results.json" 2>/dev/null || echo unknown)
  say "overall: $verdict"
  [ "$verdict" = pass ]
}

main "$@"
