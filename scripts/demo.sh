#!/usr/bin/env bash
# `make demo`: runs the ResNet-style cuDNN program (tests/e2e/resnet_seq) over the CPU
# emulation with the shim preloaded, logging every distinct conv -> BN pair it finds and
# the summary, so a new user sees what the shim reports for a real call sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
LD_LIBRARY_PATH=$(realpath "$build/emu")
export LD_LIBRARY_PATH
echo "== resnet_seq (stem + 4 bottleneck blocks, 15 conv -> BN pairs) under the shim, CPU emulation =="
CONVBN_MODE=${CONVBN_MODE:-observe} CONVBN_LOG=1 LD_PRELOAD=$(realpath "$build/libconvbn_shim.so") \
  "$build/tests/e2e/resnet_seq"
cat <<'MSG'

Each "convbn: pair" line is one distinct conv -> inference-BN signature: shapes, padding,
stride, dilation, groups, type, layout, BN mode and epsilon, whether the pair can be folded
into one convolution (or why not), and the function that issued it.  The summary counts
every pair instance; "activation bytes a fusion would save" is 2 x the conv output bytes per
fusable pair (the write of y and the BN's read of it).  The program's own output is the one
line without the "convbn:" prefix: the shim never writes to stdout.
MSG
