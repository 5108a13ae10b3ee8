"""PyTorch driver of the GPU validation kit: one process per configuration, because the
shim can only be preloaded per process.  The step modules (discovery, models, training,
traces) start it with the environment of the configuration and read the JSON it writes.

Subcommands:
  discover  conv, conv + bias, BN eval, conv -> BN (-> ReLU) and their backward, under
            no_grad and in a training step with frozen BN; each scenario's calls are framed
            by `convbn-kit: begin/end NAME` lines appended to CONVBN_LOG_FILE; with
            --profile (run without the shim), the CUDA runtime calls and GPU kernels of each
            scenario in order, from torch.profiler
  models    torchvision models with random weights (and random BN statistics) in eval mode
            under no_grad: images/s (median of --iters after --warmup), outputs saved or
            compared with saved ones, the shim's counters per forward; --folded also times
            the model with BN folded offline (torch.fx.experimental.optimization.fuse)
  train     a model with frozen (eval-mode) BN trained with SGD for --steps steps,
            deterministic cuDNN; saves losses, final gradients and parameters, and the
            output of a no_grad validation pass made between steps
  compare   compares two `train` results: bit-identical losses, gradients, parameters
  record    one forward pass per configuration (for CONVBN_TRACE)

PyTorch is imported inside the functions only: the kit's tests import nothing of this file
and only byte-compile it.
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

CONFIGS = ("fp32-nchw", "fp16-cl")
COUNTER_FIELDS = ("pairs_seen", "pairs_fusable", "pairs_fused", "distinct_signatures",
                  "bytes_saveable", "bytes_not_moved", "bytes_kept_for_grad", "flushes",
                  "pairs_verified")
REASONS = 32


class CounterStruct(ctypes.Structure):
    """struct convbn_counters of include/convbn/convbn.h."""
    _fields_ = ([(name, ctypes.c_uint64) for name in COUNTER_FIELDS] +
                [("verify_max_abs_error", ctypes.c_double),
                 ("verify_max_rel_error", ctypes.c_double),
                 ("device_bytes_high_water", ctypes.c_uint64),
                 ("not_fusable", ctypes.c_uint64 * REASONS)])


class ShimCounters:
    """The preloaded shim's counters (convbn_get_counters), or nothing when not preloaded."""

    def __init__(self):
        lib = ctypes.CDLL(None)
        self.get = getattr(lib, "convbn_get_counters", None)
        self.reason_text = getattr(lib, "convbn_reason_text", None)
        if self.reason_text is not None:
            self.reason_text.restype = ctypes.c_char_p
            self.reason_text.argtypes = [ctypes.c_int]

    @property
    def present(self):
        """True when the shim is preloaded in this process."""
        return self.get is not None

    def read(self):
        """Returns the counters as a dict (not_fusable by reason name), or None."""
        if self.get is None:
            return None
        c = CounterStruct()
        self.get(ctypes.byref(c), ctypes.sizeof(c))
        out = {name: int(getattr(c, name)) for name in COUNTER_FIELDS}
        out["device_bytes_high_water"] = int(c.device_bytes_high_water)
        reasons = {}
        for i in range(1, REASONS):
            if c.not_fusable[i]:
                name = self.reason_text(i) if self.reason_text else None
                reasons[name.decode() if name else str(i)] = int(c.not_fusable[i])
        out["not_fused"] = reasons
        return out

    @staticmethod
    def delta(before, after):
        """Returns after - before for two read() results (None when either is None)."""
        if before is None or after is None:
            return None
        out = {k: after[k] - before[k] for k in COUNTER_FIELDS}
        out["not_fused"] = {k: v - before["not_fused"].get(k, 0)
                            for k, v in after["not_fused"].items()
                            if v - before["not_fused"].get(k, 0)}
        return out


def emit(path, row):
    """Appends one JSON line to path (flushed at once: a killed process keeps its rows)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def mark(what, name):
    """Appends `convbn-kit: WHAT NAME` to the shim's log file (CONVBN_LOG_FILE)."""
    path = os.environ.get("CONVBN_LOG_FILE")
    if path and "%p" not in path:
        with open(path, "a", encoding="utf-8") as f:
            f.write("convbn-kit: %s %s\n" % (what, name))


# The device the driver runs on: "cuda" on the GPU machine; GPU_KIT_DEVICE=cpu runs the
# same code on the CPU, to test the kit on a machine without a GPU (no cuDNN is involved
# then, and the timings mean nothing).
DEVICE = os.environ.get("GPU_KIT_DEVICE", "cuda")


def on_gpu():
    """True when the driver runs on the GPU."""
    return DEVICE == "cuda"


def sync():
    """Waits for the GPU's queued work (nothing to wait for on the CPU)."""
    import torch
    if on_gpu():
        torch.cuda.synchronize()


def reset_peak():
    """Resets PyTorch's peak GPU memory statistic."""
    import torch
    if on_gpu():
        torch.cuda.reset_peak_memory_stats()


def peak_memory():
    """Returns torch.cuda.max_memory_allocated(), or None on the CPU."""
    import torch
    return torch.cuda.max_memory_allocated() if on_gpu() else None


def release():
    """Returns cached GPU memory to the device (between models)."""
    import torch
    if on_gpu():
        release()


def versions():
    """Returns the versions of torch, its CUDA and cuDNN, and the device name."""
    import torch
    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "v8_api_disabled_env": os.environ.get("TORCH_CUDNN_V8_API_DISABLED"),
            "shim_preloaded": ShimCounters().present}


def module_to(module, config):
    """Returns module on the GPU in `config`: fp32 NCHW or fp16 channels_last."""
    import torch
    module = module.to(DEVICE)
    if config == "fp16-cl":
        module = module.half().to(memory_format=torch.channels_last)
    return module


def tensor_to(x, config):
    """Returns x on the GPU in `config`: fp32 NCHW or fp16 channels_last."""
    import torch
    x = x.to(DEVICE)
    if config == "fp16-cl":
        x = x.half().contiguous(memory_format=torch.channels_last)
    return x


# ---------------------------------------------------------------------------------------
# discover

def scenario_modules(name):
    """Returns (module, input shape) of a discovery scenario (random weights, BN in eval
    mode with random statistics)."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    c_in, c_out = 32, 64
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=name.startswith("conv_bias"))
    bn = nn.BatchNorm2d(c_out)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    parts = {"conv": [conv], "conv_bias": [conv], "bn_eval": [bn],
             "conv_bn": [conv, bn], "conv_bias_bn": [conv, bn],
             "conv_bn_relu": [conv, bn, nn.ReLU(inplace=True)]}[name]
    shape = (8, c_out if name == "bn_eval" else c_in, 28, 28)
    return nn.Sequential(*parts).eval(), shape


SCENARIOS = (
    ("conv", "fp32-nchw"), ("conv_bias", "fp32-nchw"), ("bn_eval", "fp32-nchw"),
    ("conv_bn", "fp32-nchw"), ("conv_bias_bn", "fp32-nchw"), ("conv_bn_relu", "fp32-nchw"),
    ("conv_bn", "fp16-cl"),
)


def run_scenario(module, x, mode):
    """Runs one scenario: a forward under no_grad, or a training step (forward and
    backward with grad on; BN stays in eval mode, i.e. frozen)."""
    import torch
    if mode == "no_grad":
        with torch.no_grad():
            module(x)
    else:
        x = x.detach().requires_grad_(True)
        module(x).float().sum().backward()
    sync()


def profile_scenario(module, x, mode):
    """Returns {"runtime": [...], "gpu": [...]}: CUDA runtime calls and GPU activities
    (kernels, copies, memsets) of one run of the scenario, in time order."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu() else [])
    with profile(activities=activities) as prof:
        run_scenario(module, x, mode)
    rows = []
    for e in prof.events():
        gpu = str(getattr(e, "device_type", "")).endswith("CUDA")
        if not gpu and not e.name.startswith(("cuda", "cu", "cudnn")):
            continue
        rows.append((e.time_range.start, "gpu" if gpu else "runtime", e.name[:160]))
    rows.sort()
    return {"runtime": [n for _, k, n in rows if k == "runtime"],
            "gpu": [n for _, k, n in rows if k == "gpu"]}


def cmd_discover(args):
    """Runs every scenario in both modes, marked in the shim's log, or profiled."""
    import torch
    torch.backends.cudnn.benchmark = False
    counters = ShimCounters()
    doc = {"versions": versions(), "profile": args.profile, "scenarios": []}
    for name, config in SCENARIOS:
        for mode in ("no_grad", "train"):
            label = "%s.%s.%s" % (name, config, mode)
            entry = {"label": label, "scenario": name, "config": config, "mode": mode}
            try:
                module, shape = scenario_modules(name)
                module, x = module_to(module, config), tensor_to(torch.randn(*shape), config)
                mark("begin", "warmup." + label)
                run_scenario(module, x, mode)
                mark("end", "warmup." + label)
                if args.profile:
                    entry["profile"] = profile_scenario(module, x, mode)
                else:
                    before = counters.read()
                    mark("begin", label)
                    run_scenario(module, x, mode)
                    mark("end", label)
                    entry["counters"] = ShimCounters.delta(before, counters.read())
            except Exception as exc:  # noqa: BLE001 - recorded, the next scenario runs
                entry["error"] = "%s: %s" % (type(exc).__name__, exc)
            doc["scenarios"].append(entry)
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)


# ---------------------------------------------------------------------------------------
# models

def randomize_bn(model, seed):
    """Gives every BatchNorm random affine parameters and running statistics (seeded), so
    that folding it is not close to the identity."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                n = m.num_features
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def build_model(name, seed=0):
    """Returns torchvision's `name` (weights=None) on the CPU in eval mode, seeded."""
    import torch
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    randomize_bn(model, seed + 1)
    return model.eval()


def count_bn(model):
    """Returns the number of BatchNorm modules in model."""
    import torch
    return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def fold_bn(model):
    """Returns (model with every conv -> BN folded offline, method text), or (None, why)."""
    try:
        from torch.fx.experimental.optimization import fuse
        return fuse(model, inplace=False), "torch.fx.experimental.optimization.fuse"
    except Exception as exc:  # noqa: BLE001 - not every model traces
        return None, "fold failed: %s: %s" % (type(exc).__name__, str(exc)[:200])


def model_input(batch, config, seed=1):
    """Returns a seeded random batch of 224x224 images on the GPU in config."""
    import torch
    g = torch.Generator().manual_seed(seed)
    return tensor_to(torch.randn(batch, 3, 224, 224, generator=g), config)


def timed_forwards(model, x, warmup, iters):
    """Runs warmup + iters forwards under no_grad, each iteration timed with CUDA events.
    Returns (output of one more forward, [milliseconds per iteration])."""
    import torch
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(iters):
            times.append(timed(lambda: model(x)))
        out = model(x)
        sync()
    return out.float().cpu(), times


def timed(func):
    """Returns the milliseconds func() takes on the device (CUDA events on the GPU)."""
    import torch
    if not on_gpu():
        start = time.perf_counter()
        func()
        return (time.perf_counter() - start) * 1000.0
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    func()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def errors(got, ref):
    """Returns {"max_abs", "max_rel" (|a - b| / max(1, |b|)), "nonfinite"} of two outputs."""
    import torch
    diff = (got - ref).abs()
    rel = diff / ref.abs().clamp(min=1.0)
    bad = int((~torch.isfinite(got)).sum()) + int((~torch.isfinite(ref)).sum())
    return {"max_abs": float(diff.max()), "max_rel": float(rel.max()), "nonfinite": bad,
            "ref_max": float(ref.abs().max())}


def measure(model, config, args, counters):
    """Times one model in one config.  Returns (row fields, output on the CPU)."""
    import torch
    module = module_to(model, config)
    x = model_input(args.batch, config)
    before = counters.read()
    reset_peak()
    out, times = timed_forwards(module, x, args.warmup, args.iters)
    forwards = args.warmup + args.iters + 1
    delta = ShimCounters.delta(before, counters.read())
    median = statistics.median(times)
    row = {"median_ms": round(median, 4), "images_per_s": round(args.batch * 1000.0 / median, 1),
           "iters": len(times), "min_ms": round(min(times), 4),
           "max_memory_allocated": peak_memory()}
    if delta is not None:
        row["counters"] = delta
        row["pairs_per_forward"] = delta["pairs_seen"] / forwards
        row["fused_per_forward"] = delta["pairs_fused"] / forwards
    return row, out


def cmd_models(args):
    """Measures each model in each config, writing one JSON line per measurement."""
    import torch
    torch.backends.cudnn.benchmark = args.benchmark
    counters = ShimCounters()
    emit(args.out, {"kind": "versions", **versions(), "variant": args.variant, "api": args.api,
                    "batch": args.batch, "warmup": args.warmup, "iters": args.iters,
                    "cudnn_benchmark": args.benchmark})
    for name in args.models.split(","):
        if time.time() > args.deadline:
            emit(args.out, {"kind": "skipped", "model": name, "api": args.api,
                            "variant": args.variant, "why": "no time left"})
            continue
        try:
            base = build_model(name)
            folded, how = fold_bn(base) if args.folded else (None, None)
            for config in CONFIGS:
                measure_config(args, counters, name, base, folded, how, config)
        except Exception as exc:  # noqa: BLE001 - recorded, the next model runs
            emit(args.out, {"kind": "error", "model": name, "api": args.api, "variant": args.variant,
                            "error": "%s: %s" % (type(exc).__name__, exc)})
        release()


def measure_config(args, counters, name, base, folded, how, config):
    """Measures model `name` in one config (eager, and folded when given); emits rows."""
    import copy
    import torch
    ref_path = os.path.join(args.tensors, "%s.%s.%s.pt" % (args.api, name, config))
    row = {"kind": "row", "model": name, "config": config, "variant": args.variant,
           "api": args.api, "batch": args.batch, "bn_modules": count_bn(base)}
    try:
        fields, out = measure(copy.deepcopy(base), config, args, counters)
        row.update(fields)
        if args.variant == "none":
            torch.save(out, ref_path)
        elif os.path.isfile(ref_path):
            row["vs_none"] = errors(out, torch.load(ref_path))
    except Exception as exc:  # noqa: BLE001
        row["error"] = "%s: %s" % (type(exc).__name__, str(exc)[:300])
    emit(args.out, row)
    if args.folded:
        emit(args.out, measure_folded(args, counters, name, folded, how, config, ref_path))
    release()


def measure_folded(args, counters, name, folded, how, config, ref_path):
    """Returns the row of the model with BN folded offline (or why it could not fold)."""
    import copy
    import torch
    row = {"kind": "row", "model": name, "config": config, "variant": "folded",
           "api": args.api, "batch": args.batch, "fold": how}
    if folded is None:
        row["error"] = how
        return row
    try:
        row["bn_modules"] = count_bn(folded)
        fields, out = measure(copy.deepcopy(folded), config, args, counters)
        row.update(fields)
        if os.path.isfile(ref_path):
            row["vs_none"] = errors(out, torch.load(ref_path))
    except Exception as exc:  # noqa: BLE001 - recorded in the row
        row["error"] = "%s: %s" % (type(exc).__name__, str(exc)[:300])
    return row


# ---------------------------------------------------------------------------------------
# train / compare

def freeze_bn(model):
    """Puts every BatchNorm in eval mode (frozen statistics) while the rest trains."""
    import torch
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def deterministic_pooling(model):
    """Replaces torchvision's AdaptiveAvgPool2d((1, 1)) by a mean over H and W: the same
    values, and a backward that PyTorch does not list as nondeterministic on CUDA (the
    bit-for-bit comparison needs a deterministic baseline)."""
    import torch

    class MeanPool(torch.nn.Module):
        """Global average pooling as a mean (keeps N, C, 1, 1)."""

        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=True)

    if isinstance(getattr(model, "avgpool", None), torch.nn.AdaptiveAvgPool2d):
        model.avgpool = MeanPool()
    return model


def cmd_train(args):
    """Trains with frozen BN for --steps SGD steps; saves tensors and a JSON summary."""
    import torch
    import torch.nn.functional as F
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    counters = ShimCounters()
    model = deterministic_pooling(build_model(args.model)).to(DEVICE)
    freeze_bn(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(7)
    batches = [(torch.randn(args.batch, 3, args.size, args.size, generator=g),
                torch.randint(0, 1000, (args.batch,), generator=g)) for _ in range(args.steps)]
    val_x = torch.randn(args.batch, 3, args.size, args.size, generator=g).to(DEVICE)
    sync()
    reset_peak()
    losses, val_out, step_deltas, val_delta = [], None, [], None
    for i, (x, y) in enumerate(batches):
        before = counters.read()
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x.to(DEVICE)), y.to(DEVICE))
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        step_deltas.append(ShimCounters.delta(before, counters.read()))
        if i == args.steps // 2:
            before = counters.read()
            with torch.no_grad():
                val_out = model(val_x).float().cpu()
            val_delta = ShimCounters.delta(before, counters.read())
    sync()
    peak = peak_memory()
    params = {n: p.detach().cpu() for n, p in model.named_parameters()}
    grads = {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}
    torch.save({"losses": torch.stack(losses).cpu(), "grads": grads, "params": params,
                "val_out": val_out}, args.save)
    doc = {"versions": versions(), "model": args.model, "batch": args.batch, "size": args.size,
           "steps": args.steps, "losses": [float(l) for l in losses],
           "max_memory_allocated": peak, "counters_per_step": step_deltas,
           "counters_validation": val_delta, "counters_total": counters.read()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


def same_bits(a, b, torch):
    """True when two tensors have the same shape, type and bytes (NaNs included)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def compare_dicts(a, b, torch):
    """Returns {"tensors", "different", "max_abs", "first_different"} of two name->tensor dicts."""
    names = sorted(set(a) | set(b))
    different = [n for n in names if n not in a or n not in b or not same_bits(a[n], b[n], torch)]
    max_abs = 0.0
    for n in different:
        if n in a and n in b and a[n].shape == b[n].shape:
            max_abs = max(max_abs, float((a[n].double() - b[n].double()).abs().max()))
    return {"tensors": len(names), "different": len(different), "max_abs": max_abs,
            "first_different": different[:5]}


def compare_train(a, b, torch):
    """Returns the comparison of two `train` results (dicts of tensors)."""
    doc = {"losses_equal": same_bits(a["losses"], b["losses"], torch),
           "losses_a": a["losses"].tolist(), "losses_b": b["losses"].tolist(),
           "grads": compare_dicts(a["grads"], b["grads"], torch),
           "params": compare_dicts(a["params"], b["params"], torch)}
    if a.get("val_out") is not None and b.get("val_out") is not None:
        doc["validation"] = errors(b["val_out"], a["val_out"])
        doc["validation"]["equal"] = same_bits(a["val_out"], b["val_out"], torch)
    doc["bit_identical"] = (doc["losses_equal"] and not doc["grads"]["different"]
                            and not doc["params"]["different"])
    return doc


def cmd_compare(args):
    """Compares `train` results bit for bit with the first one; writes {file: verdict}."""
    import torch
    base = torch.load(args.base) if os.path.isfile(args.base) else None
    doc = {}
    for other in args.others:
        if base is None:
            doc[os.path.basename(other)] = {"error": "no result of the run without the shim"}
        elif os.path.isfile(other):
            doc[os.path.basename(other)] = compare_train(base, torch.load(other), torch)
        else:
            doc[os.path.basename(other)] = {"error": "missing"}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


# ---------------------------------------------------------------------------------------
# record

def cmd_record(args):
    """One forward pass of the model per config under no_grad (for CONVBN_TRACE)."""
    import copy
    import torch
    base = build_model(args.model)
    done = []
    for config in args.configs.split(","):
        module = module_to(copy.deepcopy(base), config)
        with torch.no_grad():
            module(model_input(args.batch, config))
        sync()
        del module
        done.append(config)
    print(json.dumps({"model": args.model, "configs": done, "batch": args.batch}))


def parser():
    """Returns the command-line parser."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discover")
    d.add_argument("--out", required=True)
    d.add_argument("--profile", action="store_true")
    m = sub.add_parser("models")
    m.add_argument("--out", required=True, help="JSON Lines file to append to")
    m.add_argument("--models", required=True)
    m.add_argument("--variant", choices=("none", "shim"), required=True)
    m.add_argument("--api", default="default")
    m.add_argument("--tensors", required=True, help="directory of the saved outputs")
    m.add_argument("--batch", type=int, default=64)
    m.add_argument("--warmup", type=int, default=5)
    m.add_argument("--iters", type=int, default=20)
    m.add_argument("--folded", action="store_true")
    m.add_argument("--benchmark", action="store_true", help="torch.backends.cudnn.benchmark")
    m.add_argument("--deadline", type=float, default=float("inf"))
    t = sub.add_parser("train")
    t.add_argument("--model", default="resnet18")
    t.add_argument("--steps", type=int, default=5)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--size", type=int, default=224)
    t.add_argument("--save", required=True)
    t.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("base")
    c.add_argument("others", nargs="+")
    c.add_argument("--out", required=True)
    r = sub.add_parser("record")
    r.add_argument("--model", required=True)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--configs", default=",".join(CONFIGS))
    return p


def main(argv=None):
    """Entry point: runs the subcommand."""
    args = parser().parse_args(argv)
    handlers = {"discover": cmd_discover, "models": cmd_models, "train": cmd_train,
                "compare": cmd_compare, "record": cmd_record}
    handlers[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
