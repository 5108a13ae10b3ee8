#!/usr/bin/env bash
# `make demo`: replays bench/traces/resnet50.jsonl (the cuDNN calls of one ResNet-50
# inference pass, synthetic, reduced size) with bench/convbn-bench under the shim, over the
# CPU emulation, and says what the table means.  The Makefile builds everything first.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
trace=bench/traces/resnet50.jsonl
[ -r "$trace" ] || { echo "demo: $trace not found" >&2; exit 2; }
LD_LIBRARY_PATH=$(realpath "$build/emu")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
echo "== convbn-bench $trace, under the shim, over the CPU emulation of cuDNN =="
LD_PRELOAD=$(realpath "$build/libconvbn_shim.so") "$build/bench/convbn-bench" "$trace"
cat <<'MSG'

What the table means.  Each row is one pair signature: a convolution geometry whose output
goes straight into an inference BatchNorm, with the number of such pairs in one forward
pass.  "baseline" replays the calls with the shim off (conv, then BN); "shim" replays the
same calls with the shim in fuse mode, which runs each pair as one convolution with the BN
folded into its weights at every call; "deploy" replaces each pair by one conv + bias whose
weights were folded once, offline: the best any fusion can do.  shim/deploy is the price of
folding at run time behind an unmodified program (1.00 = as good as an offline export);
shim/base below 1.00 is a speed-up over the program as written.  "bytes saved" is the
activation traffic a fusion removes per forward pass: the conv output is neither written
nor read back by the BN, twice its size per pair.  The check line compares every pair's
fused output with its baseline output.

Here the times are CPU wall-clock milliseconds of the emulation's reference loops, not GPU
performance: the convolution loops dominate, the fold runs on the host, and the other
calls are nearly free, so the ratios say little about a GPU, where a pair is bound by
memory traffic.  The output check and the bytes saved carry over; for GPU timings run the
same command on a machine with a GPU, where the bench times with CUDA events.
MSG
