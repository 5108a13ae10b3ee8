#!/usr/bin/env bash
# `make demo`: replays bench/traces/resnet50.jsonl (the cuDNN calls of one ResNet-50
# inference pass, synthetic, reduced size) with bench/convbn-bench under the shim, on the
# real cuDNN when a GPU is present (nvidia-smi lists one and a libcudnn.so.9 is found:
# CUDNN_LIB_DIR, the PyTorch wheel's, or ldconfig's), else over the CPU emulation, and says
# what the table means.  The Makefile builds everything first.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
trace=bench/traces/resnet50.jsonl
[ -r "$trace" ] || { echo "demo: $trace not found" >&2; exit 2; }
# Prints the directory of the real libcudnn.so.9, or nothing.
real_cudnn_dir() {
  if [ -n "${CUDNN_LIB_DIR:-}" ]; then echo "$CUDNN_LIB_DIR"; return; fi
  python3 -c 'import os, nvidia.cudnn as m; print(os.path.join(os.path.dirname(m.__file__), "lib"))' \
    2>/dev/null && return
  ldconfig -p 2>/dev/null | awk '/libcudnn\.so\.9 / {print $NF; exit}' | xargs -r dirname
}

libs=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  libs=$(real_cudnn_dir)
fi
if [ -n "$libs" ]; then
  where="on the GPU, real cuDNN from $libs"
  LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  where="over the CPU emulation of cuDNN (no GPU found)"
  LD_LIBRARY_PATH=$(realpath "$build/emu")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export LD_LIBRARY_PATH
echo "== convbn-bench $trace, under the shim, $where =="
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

The bench prints which clock it used.  Under the emulation the times are CPU wall-clock
milliseconds of reference loops, not GPU performance: the convolution loops dominate, the
fold runs on the host, and the other calls are nearly free, so the ratios say little about
a GPU, where a pair is bound by memory traffic.  The output check and the bytes saved carry
over.  On a GPU the bench times with CUDA events.
MSG
