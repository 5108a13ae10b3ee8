"""Step c, discovery: which cuDNN and CUDA runtime calls PyTorch makes for a convolution,
a convolution with bias, a BatchNorm in eval mode, conv -> BN (-> ReLU), and their
backward, under no_grad and in a training step with frozen BN, with PyTorch's default cuDNN
path and with TORCH_CUDNN_V8_API_DISABLED=1 (its legacy path).

Per path, two driver processes (scripts/gpu/torch_driver.py discover):
  with the shim     CONVBN_MODE=auto, CONVBN_LOG=2 (one log line per intercepted call),
                    CONVBN_STATS=1, CONVBN_TRACE; the driver frames each scenario with
                    `convbn-kit: begin/end` lines in the log and reads the shim's counters
  without it        torch.profiler: the CUDA runtime calls and GPU kernels in order
Results, per configuration: intercepted calls counted per function name; for every
convolution followed by an inference BN, the calls in between (what decides whether the
precise flush rule of DESIGN.md section 5 keeps PyTorch pairs fusable: the precise rule is
not built yet); the kernels the profiler saw; launches seen by the shim vs the profiler.
"""

import collections
import glob
import os

import kit
import logparse

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_driver.py")
PAIR_SCENARIOS = ("conv_bn", "conv_bias_bn", "conv_bn_relu")


def trace_summary(path):
    """Returns {"file", "ops": {op: n}, "opaque": {name: n}} of a recorded trace."""
    ops, opaque = collections.Counter(), collections.Counter()
    for row in kit.read_jsonl(path)[1:]:
        ops[row.get("op", "?")] += 1
        if row.get("op") == "opaque":
            opaque[row.get("name", "?")] += 1
    return {"file": os.path.basename(path), "ops": dict(ops), "opaque": dict(opaque.most_common(20))}


def used(calls, names):
    """Returns the names of `names` that appear in calls, joined, or None."""
    seen = [n for n in names if n in calls]
    return ", ".join(seen) if seen else None


def verdict(entry):
    """Returns a sentence on what the scenario shows: which cuDNN calls ran its conv or
    BN, and, for conv -> BN scenarios, what stands between the two."""
    calls = entry.get("calls", {})
    conv = used(calls, logparse.CONV_CALLS)
    bn = used(calls, logparse.BN_CALLS)
    conv_text = "conv through %s" % conv if conv else "no cuDNN convolution call seen"
    bn_text = "BN through %s" % bn if bn else "BN not through cuDNN (PyTorch's own kernel)"
    scenario = entry.get("scenario", "")
    if "bn" not in scenario:
        return conv_text
    if not scenario.startswith("conv"):
        return bn_text
    win = entry.get("windows") or {}
    if not win.get("pairs"):
        return "%s; %s: no conv directly followed by a BN on its stream" % (conv_text, bn_text)
    if win["adjacent"] == win["pairs"]:
        return "conv and BN adjacent (%s, %s): fusable under the conservative rule" % (conv, bn)
    between = ", ".join("%s x%d" % kv for kv in list(win["between"].items())[:6])
    return ("%d of %d conv -> BN pairs have calls in between (%s): the precise rule decides; "
            "see the kernels below" % (win["pairs"] - win["adjacent"], win["pairs"], between))


def by_mode(entries):
    """Returns {mode: {call: count}} summed over the scenarios of each mode."""
    out = {}
    for e in entries:
        counts = out.setdefault(e.get("mode") or "?", collections.Counter())
        counts.update(e.get("calls") or {})
    return {mode: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for mode, c in out.items()}


def merge_scenarios(log_text, shim_doc, profile_doc):
    """Returns one entry per scenario: the driver's counters, the log's calls and windows,
    the profiler's runtime calls and kernels."""
    regions = logparse.split_regions(log_text)
    profiles = {s["label"]: s for s in (profile_doc or {}).get("scenarios", [])}
    entries = []
    for s in (shim_doc or {}).get("scenarios", []):
        calls = regions.get(s["label"], [])
        windows = logparse.conv_bn_windows(calls)
        prof = profiles.get(s["label"], {}).get("profile") or {}
        entry = {k: s.get(k) for k in ("label", "scenario", "config", "mode", "counters", "error")}
        entry["calls"] = logparse.count_calls(calls)
        entry["windows"] = logparse.summarise_windows(windows)
        entry["window_samples"] = [w["between"][:20] for w in windows if w["between"]][:3]
        entry["profile_runtime"] = dict(collections.Counter(prof.get("runtime", [])).most_common(15))
        entry["profile_gpu"] = prof.get("gpu", [])[:40]
        entry["launches"] = {"shim": entry["calls"].get("cudaLaunchKernel", 0),
                             "profiler": entry["profile_runtime"].get("cudaLaunchKernel", 0)}
        entry["verdict"] = verdict(entry)
        entries.append(entry)
    return entries


class Discovery:
    """Runs the driver per PyTorch cuDNN path and records what it saw."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "discovery", "Discovery: PyTorch's cuDNN and CUDA runtime calls")
        self.step.data["runs"] = []

    def run_api(self, api):
        """Both driver processes for one cuDNN path; records the merged result."""
        ctx = self.ctx
        log = ctx.path("discovery", "%s.log" % api)
        trace = ctx.path("discovery", "%s.trace.%%p.jsonl" % api)
        shim_json = ctx.path("discovery", "%s.shim.json" % api)
        prof_json = ctx.path("discovery", "%s.profile.json" % api)
        for stale in [log, shim_json, prof_json] + glob.glob(trace.replace("%p", "*")):
            if os.path.exists(stale) and not ctx.dry_run:
                os.remove(stale)
        env = ctx.py_env(preload=True, api=api, CONVBN_MODE="auto", CONVBN_LOG=2, CONVBN_STATS=1,
                         CONVBN_LOG_FILE=log, CONVBN_TRACE=trace)
        later = 2 if api == "default" else 0
        res = ctx.run("discover %s with the shim" % api, [kit.PYTHON, DRIVER, "discover", "--out", shim_json],
                      env, timeout=ctx.budget(later + 1), log="discovery/%s.shim.out" % api)
        prof = ctx.run("discover %s profiled" % api, [kit.PYTHON, DRIVER, "discover", "--profile",
                                                      "--out", prof_json],
                       ctx.py_env(api=api), timeout=ctx.budget(later), log="discovery/%s.profile.out" % api)
        if res.dry:
            return
        self.step.check_job("driver with the shim, %s path" % api, res, "scenarios run",
                            log="discovery/%s.shim.out" % api)
        self.step.check_job("driver under torch.profiler, %s path" % api, prof, "scenarios profiled",
                            log="discovery/%s.profile.out" % api)
        text = logparse.read(log)
        shim_doc, prof_doc = kit.read_json(shim_json, {}), kit.read_json(prof_json, {})
        if shim_doc and not (shim_doc.get("versions") or {}).get("shim_preloaded"):
            self.step.check("shim loaded in the %s path's driver" % api, "error",
                            "convbn_get_counters not found in the process: LD_PRELOAD was ignored")
        traces = sorted(glob.glob(trace.replace("%p", "*")))
        run = {"api": api, "env": kit.API_ENVS[api], "versions": shim_doc.get("versions"),
               "summary": logparse.parse_summary(text), "pair_lines": logparse.pair_lines(text)[:20],
               "scenarios": merge_scenarios(text, shim_doc, prof_doc),
               "traces": [trace_summary(t) for t in traces]}
        run["by_mode"] = by_mode(run["scenarios"])
        self.step.data["runs"].append(run)
        self.step.save()
        self.pair_checks(run)

    def pair_checks(self, run):
        """Records, per pair scenario, what the shim saw and what stands between."""
        for s in run["scenarios"]:
            if s["scenario"] not in PAIR_SCENARIOS:
                continue
            c = s.get("counters") or {}
            seen = "pairs seen %s, fused %s%s" % (
                c.get("pairs_seen", "?"), c.get("pairs_fused", "?"),
                "".join(", not fused %s %d" % kv for kv in sorted(c.get("not_fused", {}).items())))
            self.step.check("%s path, %s: %s" % (run["api"], s["label"], seen), "info",
                            s.get("error") or s["verdict"])

    def run(self):
        """Both cuDNN paths."""
        if not self.ctx.dry_run and not os.path.isfile(self.ctx.shim):
            self.step.check("shim present", "error", "%s not built" % self.ctx.rel(self.ctx.shim))
            return
        for api in ("default", "legacy"):
            self.run_api(api)


def main():
    """Entry point."""
    Discovery(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
