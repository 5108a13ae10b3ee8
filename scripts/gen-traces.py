#!/usr/bin/env python3
"""Write, or check, the synthetic cuDNN call traces bundled in bench/traces/.

Each trace is the inference call sequence that a framework issues through cuDNN's legacy
API for one architecture in eval mode, in the JSON Lines format of docs/trace-schema.md
(schema version 1), for bench/convbn-bench to replay. The layer structure follows
torchvision's definitions (channel ratios, kernel sizes, strides, padding, groups,
downsample branches, in-place ReLUs); the size is reduced (batch 1, a small input, channel
widths divided by a stated factor) so that one forward pass stays under about 30 M
multiply-accumulates and a trace replays in seconds on the CPU emulation.

What each layer becomes:

  Conv2d/Conv3d + BatchNorm   conv_fwd (IMPLICIT_PRECOMP_GEMM, alpha 1, beta 0,
                              cross-correlation, float compute) whose y buffer is the x of
                              the following bn_inference (spatial, eps 1e-5; scale, bias,
                              mean and var in buffers of their own; output in a new buffer)
  ReLU / ReLU6 (in place)     opaque cudnnActivationForward; the next layer reads the same buffer
  MaxPool / AvgPool           opaque cudnnPoolingForward; its output is a new buffer
  residual add                add_tensor C = 1*A + 1*C with a full-size A: the in-place
                              `out += identity` of torchvision's blocks
  Linear                      conv_fwd whose filter covers the whole input (a 1x1 filter
                              after global pooling), then add_tensor of the per-channel bias:
                              how a cuDNN-only framework runs a fully connected layer
  Dropout (eval)              nothing

Buffer ids are given in order of first use, as the recorder does; a buffer id appears
twice only where the memory really is shared (in-place ReLU and residual add).

usage:
  gen-traces.py [--out DIR] [--model NAME ...] [--layout nchw|nhwc] [--type float|half]
      writes DIR/<model>.jsonl (default DIR: bench/traces next to this script) and prints
      one line per model: ops, conv layers, conv->BN pairs, multiply-accumulates
  gen-traces.py --check FILE...
      validates each file against the schema; exit status 0 when all are valid, 1 when
      one is not (each problem printed as file:line: message), 2 on a usage error

The output depends on nothing but the arguments: every run writes the same bytes.
"""

import argparse
import json
import os
import re
import sys

SCHEMA_VERSION = 1
CUDNN_VERSION = "9.19.0"  # the cuDNN the project builds against; synthetic traces ran on none
START_TIME = "1970-01-01T00:00:00Z"  # fixed, so that the output is reproducible
ALGO_IMPLICIT_PRECOMP_GEMM = 1
BN_EPS = 1e-5
MAX_LINE = 64 * 1024


# ----------------------------------------------------------------------------------------
# Trace builder
# ----------------------------------------------------------------------------------------

class Act:
    """An activation tensor: logical dims (N, C, [D,] H, W) and, once used, a buffer id."""

    def __init__(self, dims):
        self.dims = list(dims)
        self.buf = None

    @property
    def channels(self):
        return self.dims[1]

    @property
    def spatial(self):
        return self.dims[2:]


def packed_strides(dims, layout):
    """Strides of a fully packed tensor with logical dims (N, C, spatial...) in `layout`."""
    if layout == "nchw":
        strides = [1] * len(dims)
        for i in range(len(dims) - 2, -1, -1):
            strides[i] = strides[i + 1] * dims[i + 1]
        return strides
    # nhwc (ndhwc in 3D): C varies fastest, then W, H, (D), then N
    strides = [0] * len(dims)
    strides[1] = 1
    step = dims[1]
    for i in range(len(dims) - 1, 1, -1):
        strides[i] = step
        step *= dims[i]
    strides[0] = step
    return strides


def conv_out_size(size, kernel, stride, pad, dilation=1):
    """Output extent of one convolution or pooling axis (floor mode)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def as_list(value, nd):
    """Expand an int to an nd-element list; pass lists through."""
    return list(value) if isinstance(value, (list, tuple)) else [value] * nd


class Trace:
    """Accumulates the operations of one trace, numbering buffers in order of first use."""

    def __init__(self, model, note, layout="nchw", dtype="float"):
        self.model = model
        self.note = note
        self.layout = layout
        self.dtype = dtype
        self.ops = []
        self.next_buf = 0
        self.macs = 0
        self.convs = 0
        self.pairs = 0

    # buffers and tensors -----------------------------------------------------------------

    def new_buf(self):
        buf = self.next_buf
        self.next_buf += 1
        return buf

    def buf_of(self, act):
        if act.buf is None:
            act.buf = self.new_buf()
        return act.buf

    def tensor(self, act, dtype=None):
        return {"type": dtype or self.dtype, "dims": list(act.dims),
                "strides": packed_strides(act.dims, self.layout), "buf": self.buf_of(act)}

    def emit(self, op, **fields):
        record = {"seq": len(self.ops), "op": op, "api": "legacy", "stream": 0, "thread": 0}
        record.update(fields)
        self.ops.append(record)
        return record

    # layers ------------------------------------------------------------------------------

    def conv(self, x, out_ch, kernel, stride=1, pad=0, groups=1, dilation=1):
        """conv_fwd without bias; returns the output activation (a new buffer)."""
        nd = len(x.spatial)
        kernel, stride = as_list(kernel, nd), as_list(stride, nd)
        pad, dilation = as_list(pad, nd), as_list(dilation, nd)
        if x.channels % groups or out_ch % groups:
            raise ValueError("%s: groups %d do not divide channels %d -> %d"
                             % (self.model, groups, x.channels, out_ch))
        out_spatial = [conv_out_size(s, k, st, p, d)
                       for s, k, st, p, d in zip(x.spatial, kernel, stride, pad, dilation)]
        if min(out_spatial) < 1:
            raise ValueError("%s: input %s too small for a %s convolution"
                             % (self.model, x.dims, kernel))
        y = Act([x.dims[0], out_ch] + out_spatial)
        x_t = self.tensor(x)
        w_t = {"type": self.dtype, "format": self.layout.upper(),
               "dims": [out_ch, x.channels // groups] + kernel, "buf": self.new_buf()}
        y_t = self.tensor(y)
        conv = {"pad": pad, "stride": stride, "dilation": dilation, "groups": groups,
                "mode": "cross_correlation", "compute": "float",
                "math": "tensor_op" if self.dtype == "half" else "default"}
        self.emit("conv_fwd", name="cudnnConvolutionForward", x=x_t, w=w_t, y=y_t, conv=conv,
                  algo=ALGO_IMPLICIT_PRECOMP_GEMM, alpha=1, beta=0)
        self.macs += product(y.dims) * (x.channels // groups) * product(kernel)
        self.convs += 1
        return y

    def bn(self, x):
        """bn_inference (spatial) of x into a new buffer; returns the output."""
        y = Act(x.dims)
        params = [1, x.channels] + [1] * len(x.spatial)
        self.emit("bn_inference", name="cudnnBatchNormalizationForwardInference",
                  mode="spatial", x=self.tensor(x), y=self.tensor(y),
                  params={"type": "float", "dims": params,
                          "strides": packed_strides(params, "nchw"), "buf": None},
                  scale=self.new_buf(), bias=self.new_buf(), mean=self.new_buf(),
                  var=self.new_buf(), eps=BN_EPS, alpha=1, beta=0)
        self.pairs += 1
        return y

    def relu(self, x):
        """In-place ReLU (or ReLU6): the same activation comes back."""
        self.emit("opaque", name="cudnnActivationForward")
        return x

    def pool(self, x, kernel, stride, pad=0):
        """Max or average pooling into a new buffer (opaque: the replay only flushes)."""
        nd = len(x.spatial)
        kernel, stride, pad = as_list(kernel, nd), as_list(stride, nd), as_list(pad, nd)
        out = [conv_out_size(s, k, st, p) for s, k, st, p in zip(x.spatial, kernel, stride, pad)]
        self.emit("opaque", name="cudnnPoolingForward")
        return Act([x.dims[0], x.channels] + out)

    def global_pool(self, x, size=1):
        """Adaptive average pooling to size^nd into a new buffer."""
        self.emit("opaque", name="cudnnPoolingForward")
        return Act([x.dims[0], x.channels] + [size] * len(x.spatial))

    def add(self, c, a):
        """In-place residual add c += a (add_tensor with a full-size A); returns c."""
        self.emit("add_tensor", name="cudnnAddTensor", a=self.tensor(a), c=self.tensor(c),
                  alpha=1, beta=1)
        return c

    def linear(self, x, out_features):
        """Fully connected layer: a conv whose filter covers x, then the per-channel bias."""
        y = self.conv(x, out_features, x.spatial)
        bias = Act([1, out_features] + [1] * len(x.spatial))
        self.emit("add_tensor", name="cudnnAddTensor", a=self.tensor(bias), c=self.tensor(y),
                  alpha=1, beta=1)
        return y

    def conv_bn(self, x, out_ch, kernel, stride=1, pad=0, groups=1, relu=True):
        y = self.bn(self.conv(x, out_ch, kernel, stride, pad, groups))
        return self.relu(y) if relu else y

    # output --------------------------------------------------------------------------------

    def header(self):
        return {"convbn_trace": SCHEMA_VERSION, "cudnn_version": CUDNN_VERSION,
                "device": "unknown", "pid": 0, "start_time": START_TIME,
                "source": "synthetic", "model": self.model, "note": self.note}

    def lines(self):
        for record in [self.header()] + self.ops:
            yield json.dumps(record, separators=(",", ":"))


def product(values):
    """The product of an iterable of ints (1 when empty)."""
    result = 1
    for v in values:
        result *= v
    return result


# ----------------------------------------------------------------------------------------
# Architectures (torchvision definitions; every width passes through the divisor)
# ----------------------------------------------------------------------------------------

def resnet(t, x, block, layers, div, groups=1, width_per_group=64, num_classes=1000):
    """torchvision.models.ResNet: stem, four stages, global pool, fc."""
    inplanes = 64 // div
    x = t.conv_bn(x, inplanes, 7, stride=2, pad=3)
    x = t.pool(x, 3, 2, 1)
    for stage, blocks in enumerate(layers):
        planes = (64 << stage) // div
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            x, inplanes = block(t, x, inplanes, planes, stride, groups, width_per_group)
    x = t.global_pool(x)
    t.linear(x, num_classes)


def basic_block(t, x, inplanes, planes, stride, groups, width_per_group):
    """torchvision BasicBlock (expansion 1); returns (output, output channels)."""
    del groups, width_per_group
    identity = x
    out = t.conv_bn(x, planes, 3, stride, 1)
    out = t.conv_bn(out, planes, 3, 1, 1, relu=False)
    if stride != 1 or inplanes != planes:
        identity = t.conv_bn(x, planes, 1, stride, 0, relu=False)
    return t.relu(t.add(out, identity)), planes


def bottleneck(t, x, inplanes, planes, stride, groups, width_per_group):
    """torchvision Bottleneck (expansion 4, stride on the 3x3); returns (output, channels)."""
    width = int(planes * (width_per_group / 64.0)) * groups
    outplanes = planes * 4
    identity = x
    out = t.conv_bn(x, width, 1)
    out = t.conv_bn(out, width, 3, stride, 1, groups=groups)
    out = t.conv_bn(out, outplanes, 1, relu=False)
    if stride != 1 or inplanes != outplanes:
        identity = t.conv_bn(x, outplanes, 1, stride, 0, relu=False)
    return t.relu(t.add(out, identity)), outplanes


def mobilenet_v2(t, x, div, num_classes=1000):
    """torchvision.models.MobileNetV2 (width_mult 1, widths then divided by div)."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    inp = 32 // div
    x = t.conv_bn(x, inp, 3, stride=2, pad=1)
    for expand, channels, repeats, first_stride in settings:
        oup = channels // div
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            hidden = int(round(inp * expand))
            out = x
            if expand != 1:
                out = t.conv_bn(out, hidden, 1)
            out = t.conv_bn(out, hidden, 3, stride, 1, groups=hidden)  # depthwise
            out = t.conv_bn(out, oup, 1, relu=False)                    # linear projection
            x = t.add(out, x) if stride == 1 and inp == oup else out
            inp = oup
    x = t.conv_bn(x, 1280 // div, 1)
    x = t.global_pool(x)
    t.linear(x, num_classes)


def vgg16_bn(t, x, div, num_classes=1000):
    """torchvision.models.vgg16_bn: 13 conv+BN+ReLU, 5 max pools, pool to 7x7, 3 fc."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
           512, 512, 512, "M"]
    for v in cfg:
        x = t.pool(x, 2, 2) if v == "M" else t.conv_bn(x, v // div, 3, 1, 1)
    x = t.global_pool(x, 7)
    x = t.relu(t.linear(x, 4096 // div))
    x = t.relu(t.linear(x, 4096 // div))
    t.linear(x, num_classes)


def r3d_small(t, x, div, num_classes=400):
    """A small torchvision VideoResNet (r3d_18's stem and BasicBlock with Conv3DSimple),
    three stages of one block, downsample branches on the strided stages."""
    inplanes = 64 // div
    x = t.conv_bn(x, inplanes, [3, 7, 7], stride=[1, 2, 2], pad=[1, 3, 3])
    for stage in range(3):
        planes = (64 << stage) // div
        stride = 2 if stage > 0 else 1
        identity = x
        out = t.conv_bn(x, planes, 3, stride, 1)
        out = t.conv_bn(out, planes, 3, 1, 1, relu=False)
        if stride != 1 or inplanes != planes:
            identity = t.conv_bn(x, planes, 1, stride, 0, relu=False)
        x = t.relu(t.add(out, identity))
        inplanes = planes
    x = t.global_pool(x)
    t.linear(x, num_classes)


# name: (builder, input dims, channel divisor, what it is)
MODELS = {
    "resnet50": (lambda t, x, d: resnet(t, x, bottleneck, [3, 4, 6, 3], d),
                 [1, 3, 32, 32], 2, "torchvision resnet50"),
    "resnet18": (lambda t, x, d: resnet(t, x, basic_block, [2, 2, 2, 2], d),
                 [1, 3, 32, 32], 2, "torchvision resnet18"),
    "mobilenet_v2": (mobilenet_v2, [1, 3, 64, 64], 1, "torchvision mobilenet_v2"),
    "resnext50_32x4d": (lambda t, x, d: resnet(t, x, bottleneck, [3, 4, 6, 3], d,
                                               groups=32, width_per_group=4),
                        [1, 3, 32, 32], 2, "torchvision resnext50_32x4d, 32 groups kept"),
    "vgg16_bn": (vgg16_bn, [1, 3, 32, 32], 4, "torchvision vgg16_bn"),
    "conv3d_small": (r3d_small, [1, 3, 8, 16, 16], 4,
                     "a small 3D ResNet after torchvision r3d_18: stem and 3 stages of one "
                     "BasicBlock"),
}


def build(name, layout="nchw", dtype="float"):
    """Return the Trace of one model of MODELS."""
    builder, dims, div, what = MODELS[name]
    extras = "" if (layout, dtype) == ("nchw", "float") else ", %s %s" % (layout.upper(), dtype)
    note = ("synthetic: generated by scripts/gen-traces.py from the %s architecture at "
            "reduced size (input %s, channel widths /%d%s)"
            % (what, "x".join(map(str, dims)), div, extras))
    t = Trace(name, note, layout, dtype)
    builder(t, Act(dims), div)
    return t


def generate(out_dir, names, layout, dtype):
    """Write out_dir/<name>.jsonl for each model name and print one summary line each."""
    os.makedirs(out_dir, exist_ok=True)
    print("%-16s %5s %5s %5s %12s  %s" % ("model", "ops", "convs", "pairs", "MACs", "file"))
    for name in names:
        t = build(name, layout, dtype)
        path = os.path.join(out_dir, name + ".jsonl")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for line in t.lines():
                f.write(line + "\n")
        print("%-16s %5d %5d %5d %12d  %s" % (name, len(t.ops), t.convs, t.pairs, t.macs, path))


# ----------------------------------------------------------------------------------------
# --check
# ----------------------------------------------------------------------------------------

TYPES = {"float", "half", "bfloat16", "double", "int8", "uint8", "int32"}
OPS = {"conv_fwd", "conv_bias_act", "conv_bwd_data", "conv_bwd_filter", "bn_inference",
       "bn_training", "bn_backward", "add_tensor", "op_tensor", "opaque"}
HEADER_KEYS = {"convbn_trace": int, "cudnn_version": str, "device": str, "pid": int,
               "start_time": str, "source": str}
COMMON_KEYS = {"seq": int, "op": str, "api": str, "stream": int, "thread": int}
CONV_KEYS = {"pad": list, "stride": list, "dilation": list, "groups": int, "mode": str,
             "compute": str, "math": str}
# op -> {key: kind}; kinds: tensor, filter, conv, number, int, buf, str
OP_KEYS = {
    "conv_fwd": {"x": "tensor", "w": "filter", "y": "tensor", "conv": "conv", "algo": "int",
                 "alpha": "number", "beta": "number"},
    "conv_bias_act": {"x": "tensor", "w": "filter", "y": "tensor", "conv": "conv",
                      "algo": "int", "alpha": "number", "bias": "tensor", "alpha2": "number",
                      "activation": "str"},
    "conv_bwd_data": {"w": "filter", "dy": "tensor", "dx": "tensor", "conv": "conv",
                      "algo": "int", "alpha": "number", "beta": "number"},
    "conv_bwd_filter": {"x": "tensor", "dy": "tensor", "dw": "filter", "conv": "conv",
                        "algo": "int", "alpha": "number", "beta": "number"},
    "bn_inference": {"mode": "str", "x": "tensor", "y": "tensor", "params": "tensor",
                     "scale": "buf", "bias": "buf", "mean": "buf", "var": "buf",
                     "eps": "number", "alpha": "number", "beta": "number"},
    "bn_training": {"mode": "str", "x": "tensor", "y": "tensor", "params": "tensor",
                    "scale": "buf", "bias": "buf", "mean": "buf", "var": "buf",
                    "eps": "number", "alpha": "number", "beta": "number", "factor": "number"},
    "bn_backward": {"mode": "str", "x": "tensor", "dy": "tensor", "dx": "tensor",
                    "params": "tensor", "eps": "number"},
    "add_tensor": {"a": "tensor", "c": "tensor", "alpha": "number", "beta": "number"},
    "op_tensor": {"a": "tensor", "b": "tensor", "c": "tensor", "alpha1": "number",
                  "alpha2": "number", "beta": "number"},
    "opaque": {"name": "str"},
}
BN_MODES = {"spatial", "spatial_persistent", "per_activation"}


class CheckError(Exception):
    """A problem in a trace line; the message names the key or the rule."""


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_int_list(value, what, minimum):
    if not isinstance(value, list) or not value or not all(is_int(v) for v in value):
        raise CheckError("%s: expected a non-empty list of integers" % what)
    if min(value) < minimum:
        raise CheckError("%s: values must be >= %d, got %s" % (what, minimum, value))


def check_buf(value, what):
    if value is not None and not (is_int(value) and value >= 0):
        raise CheckError("%s: buffer id must be a non-negative integer or null" % what)


def check_tensor(value, what):
    if not isinstance(value, dict):
        raise CheckError("%s: expected a tensor object" % what)
    for key in ("type", "dims", "strides", "buf"):
        if key not in value:
            raise CheckError("%s: missing key '%s'" % (what, key))
    if value["type"] not in TYPES:
        raise CheckError("%s.type: unknown type %r" % (what, value["type"]))
    check_int_list(value["dims"], what + ".dims", 1)
    check_int_list(value["strides"], what + ".strides", 0)
    if len(value["dims"]) != len(value["strides"]):
        raise CheckError("%s: dims and strides differ in length" % what)
    check_buf(value["buf"], what + ".buf")


def check_filter(value, what):
    if not isinstance(value, dict):
        raise CheckError("%s: expected a filter object" % what)
    for key in ("type", "format", "dims", "buf"):
        if key not in value:
            raise CheckError("%s: missing key '%s'" % (what, key))
    if value["type"] not in TYPES:
        raise CheckError("%s.type: unknown type %r" % (what, value["type"]))
    if value["format"] not in ("NCHW", "NHWC"):
        raise CheckError("%s.format: expected NCHW or NHWC, got %r" % (what, value["format"]))
    check_int_list(value["dims"], what + ".dims", 1)
    check_buf(value["buf"], what + ".buf")


def check_conv_desc(value, what):
    if not isinstance(value, dict):
        raise CheckError("%s: expected a convolution object" % what)
    for key, kind in CONV_KEYS.items():
        if key not in value:
            raise CheckError("%s: missing key '%s'" % (what, key))
        if kind is int and not is_int(value[key]) or kind is not int and not isinstance(
                value[key], kind):
            raise CheckError("%s.%s: expected %s" % (what, key, kind.__name__))
    check_int_list(value["pad"], what + ".pad", 0)
    check_int_list(value["stride"], what + ".stride", 1)
    check_int_list(value["dilation"], what + ".dilation", 1)
    if not len(value["pad"]) == len(value["stride"]) == len(value["dilation"]):
        raise CheckError("%s: pad, stride and dilation differ in length" % what)
    if value["groups"] < 1:
        raise CheckError("%s.groups: must be >= 1" % what)
    if value["mode"] not in ("cross_correlation", "convolution"):
        raise CheckError("%s.mode: unknown mode %r" % (what, value["mode"]))
    if value["compute"] not in TYPES:
        raise CheckError("%s.compute: unknown type %r" % (what, value["compute"]))
    if value["math"] not in ("default", "tensor_op", "tensor_op_allow_conversion", "fma"):
        raise CheckError("%s.math: unknown math type %r" % (what, value["math"]))


KIND_CHECKS = {
    "tensor": check_tensor,
    "filter": check_filter,
    "conv": check_conv_desc,
    "buf": check_buf,
}


def check_value(kind, value, what):
    if kind in KIND_CHECKS:
        KIND_CHECKS[kind](value, what)
    elif kind == "number" and not is_number(value):
        raise CheckError("%s: expected a number" % what)
    elif kind == "int" and not is_int(value):
        raise CheckError("%s: expected an integer" % what)
    elif kind == "str" and not isinstance(value, str):
        raise CheckError("%s: expected a string" % what)


def check_header(rec):
    if not isinstance(rec, dict):
        raise CheckError("header: expected a JSON object")
    for key, kind in HEADER_KEYS.items():
        if key not in rec:
            raise CheckError("header: missing key '%s'" % key)
        if kind is int and not is_int(rec[key]) or kind is str and not isinstance(rec[key], str):
            raise CheckError("header.%s: expected %s" % (key, kind.__name__))
    if rec["convbn_trace"] != SCHEMA_VERSION:
        raise CheckError("header.convbn_trace: unknown schema version %r" % rec["convbn_trace"])
    if not re.fullmatch(r"\d+\.\d+\.\d+", rec["cudnn_version"]):
        raise CheckError("header.cudnn_version: expected MAJOR.MINOR.PATCH")
    if rec["source"] not in ("recorded", "synthetic"):
        raise CheckError("header.source: expected recorded or synthetic, got %r" % rec["source"])
    for key in ("model", "note"):
        if key in rec and not isinstance(rec[key], str):
            raise CheckError("header.%s: expected a string" % key)


def check_op_fields(rec, seq):
    if not isinstance(rec, dict):
        raise CheckError("expected a JSON object")
    for key, kind in COMMON_KEYS.items():
        if key not in rec:
            raise CheckError("missing key '%s'" % key)
        if kind is int and not is_int(rec[key]) or kind is str and not isinstance(rec[key], str):
            raise CheckError("%s: expected %s" % (key, kind.__name__))
    if rec["seq"] != seq:
        raise CheckError("seq: expected %d, got %d" % (seq, rec["seq"]))
    if rec["op"] not in OPS:
        raise CheckError("op: unknown operation %r" % rec["op"])
    if rec["api"] not in ("legacy", "backend"):
        raise CheckError("api: expected legacy or backend, got %r" % rec["api"])
    for key, kind in OP_KEYS[rec["op"]].items():
        if key not in rec:
            raise CheckError("%s: missing key '%s'" % (rec["op"], key))
        check_value(kind, rec[key], key)
    if rec["op"].startswith("bn_") and rec["mode"] not in BN_MODES:
        raise CheckError("mode: unknown BatchNorm mode %r" % rec["mode"])


def check_conv_geometry(rec):
    """The output dims of a conv_fwd follow from x, w and the convolution."""
    x, w, y, conv = rec["x"]["dims"], rec["w"]["dims"], rec["y"]["dims"], rec["conv"]
    nd = len(x) - 2
    if nd < 1 or len(w) != len(x) or len(y) != len(x) or len(conv["pad"]) != nd:
        raise CheckError("conv_fwd: x, w, y and conv disagree on the number of dimensions")
    groups = conv["groups"]
    if x[1] % groups or w[0] % groups or x[1] // groups != w[1]:
        raise CheckError("conv_fwd: %d input channels, filter %s and groups %d do not agree"
                         % (x[1], w, groups))
    expect = [x[0], w[0]] + [
        conv_out_size(x[2 + i], w[2 + i], conv["stride"][i], conv["pad"][i], conv["dilation"][i])
        for i in range(nd)]
    if y != expect:
        raise CheckError("conv_fwd: y dims %s, expected %s from x, w and conv" % (y, expect))


def check_broadcast(rec):
    """add_tensor / op_tensor: every dim of A (and B) is 1 or equals C's."""
    c = rec["c"]["dims"]
    for key in ("a", "b"):
        if key in rec and rec["op"] in ("add_tensor", "op_tensor"):
            dims = rec[key]["dims"]
            if len(dims) != len(c) or any(d not in (1, e) for d, e in zip(dims, c)):
                raise CheckError("%s: %s dims %s do not broadcast to c dims %s"
                                 % (rec["op"], key, dims, c))


def same_tensor(a, b):
    return all(a[k] == b[k] for k in ("type", "dims", "strides", "buf"))


def check_bn_after_conv(rec, prev):
    """A synthetic BN consumes the y of the conv right before it, unchanged."""
    if prev is None or prev["op"] != "conv_fwd":
        raise CheckError("bn_inference: not preceded by the conv_fwd that writes its x")
    if not same_tensor(prev["y"], rec["x"]):
        raise CheckError("bn_inference: x %s differs from the preceding conv's y %s"
                         % (json.dumps(rec["x"]), json.dumps(prev["y"])))
    x = rec["x"]
    if rec["y"]["dims"] != x["dims"] or rec["y"]["type"] != x["type"]:
        raise CheckError("bn_inference: y dims/type differ from x")
    if rec["y"]["buf"] == x["buf"]:
        raise CheckError("bn_inference: y must be a new buffer, not the conv output")
    params = rec["params"]["dims"]
    if params != [1, x["dims"][1]] + [1] * (len(x["dims"]) - 2):
        raise CheckError("bn_inference: params dims %s do not match %d channels"
                         % (params, x["dims"][1]))


def referenced_bufs(rec):
    """Buffer ids of one operation in the order its keys appear."""
    for key, kind in OP_KEYS.get(rec["op"], {}).items():
        value = rec[key]
        if kind in ("tensor", "filter") and value["buf"] is not None:
            yield value["buf"]
        elif kind == "buf" and value is not None:
            yield value


class FileStats:
    """Counts that --check prints for a valid file."""

    def __init__(self):
        self.ops = self.convs = self.pairs = self.macs = 0


def check_line(rec, index, synthetic, state):
    """Validate operation number index (0-based); state carries what later lines need."""
    check_op_fields(rec, index)
    op = rec["op"]
    stats = state["stats"]
    stats.ops += 1
    if op == "conv_fwd":
        check_conv_geometry(rec)
        stats.convs += 1
        stats.macs += product(rec["y"]["dims"]) * product(rec["w"]["dims"][1:])
    if op in ("add_tensor", "op_tensor"):
        check_broadcast(rec)
    if op == "bn_inference":
        if synthetic:
            check_bn_after_conv(rec, state["prev"])
        if state["prev"] is not None and state["prev"]["op"] == "conv_fwd" and \
                same_tensor(state["prev"]["y"], rec["x"]):
            stats.pairs += 1
    if synthetic:
        for buf in referenced_bufs(rec):
            if buf > state["next_buf"]:
                raise CheckError("buffer %d used before buffer %d: ids must be in order of "
                                 "first use" % (buf, state["next_buf"]))
            state["next_buf"] = max(state["next_buf"], buf + 1)
    state["prev"] = rec


def check_file(path):
    """Validate one trace up to its first problem; returns (['file:line: message'] or [],
    FileStats)."""
    errors, stats = [], FileStats()
    state = {"prev": None, "next_buf": 0, "stats": stats}
    synthetic = False
    try:
        with open(path, "rb") as f:
            raw_lines = f.read().split(b"\n")
    except OSError as e:
        return ["%s: cannot read: %s" % (path, e.strerror)], stats
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    if not raw_lines:
        return ["%s:1: empty file, expected a header line" % path], stats
    for number, raw in enumerate(raw_lines, 1):
        try:
            if len(raw) > MAX_LINE:
                raise CheckError("line longer than 64 KiB")
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise CheckError("not valid UTF-8 JSON: %s" % e)
            if number == 1:
                check_header(rec)
                synthetic = rec["source"] == "synthetic"
            else:
                check_line(rec, number - 2, synthetic, state)
        except CheckError as e:
            # later lines depend on this one (seq, pairing, buffer order): stop here
            errors.append("%s:%d: %s" % (path, number, e))
            break
    return errors, stats


def check(paths):
    """Check every file; print one summary line per valid file; return the exit status."""
    failed = False
    for path in paths:
        errors, stats = check_file(path)
        for message in errors:
            print(message, file=sys.stderr)
        if errors:
            failed = True
        else:
            print("%s: ok: %d ops, %d convs, %d conv->BN pairs, %d MACs"
                  % (path, stats.ops, stats.convs, stats.pairs, stats.macs))
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------

def main(argv):
    default_out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                               "traces")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", nargs="+", metavar="FILE", help="validate trace files")
    p.add_argument("--out", default=os.path.normpath(default_out),
                   help="output directory (default: bench/traces)")
    p.add_argument("--model", action="append", choices=sorted(MODELS),
                   help="model to write (repeatable; default: all)")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw")
    p.add_argument("--type", dest="dtype", choices=("float", "half"), default="float")
    args = p.parse_args(argv)
    if args.check:
        return check(args.check)
    try:
        generate(args.out, args.model or list(MODELS), args.layout, args.dtype)
    except (OSError, ValueError) as e:
        print("gen-traces: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
