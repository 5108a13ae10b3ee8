"""Step f, recorded traces and the bench: records the cuDNN call trace (CONVBN_TRACE,
docs/trace-schema.md) of one no_grad forward pass per model of step d, fp32 NCHW then fp16
channels_last, at batch TRACE_BATCH (so that the bench replays them in seconds), under
CONVBN_MODE=observe with PyTorch's legacy cuDNN path (TORCH_CUDNN_V8_API_DISABLED=1: its
convolutions are recorded as conv_fwd; on the default path they are opaque
cudnnBackendExecute calls, recorded once for the first model to show it).  Then:

  scripts/gen-traces.py --check        every recorded trace is valid
  convbn-bench --summary               pairs, fusable fraction, reasons, bytes, per trace
  convbn-bench -n 5 -w 1               baseline / shim / deploy on the real GPU, recorded
                                       traces and the bundled synthetic ones (bench/traces)

The traces come back as OUT/traces-recorded.tar.gz (only OUT comes back, two folders deep
at most): unpack it into bench/traces/recorded/ of the repository.
"""

import concurrent.futures
import glob
import os
import shutil
import tarfile

import kit
import models

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_driver.py")
TRACE_BATCH = 8
PARALLEL = 4
TARBALL = "traces-recorded.tar.gz"


class Traces:
    """Records the traces, checks them, runs the bench, packs the traces."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "traces", "Recorded traces of the models, replayed by convbn-bench")
        self.models = ctx.models or list(models.QUICK_MODELS if ctx.quick else models.MODELS)
        self.raw = ctx.dir("traces", "raw")
        self.recorded = ctx.dir("traces", "recorded")
        self.step.data.update({"batch": TRACE_BATCH, "recorded": [], "bench": {}})

    def record_one(self, model, api):
        """Records one trace; returns (model, api, JobResult)."""
        ctx = self.ctx
        env = ctx.py_env(preload=True, api=api, CONVBN_MODE="observe",
                         CONVBN_TRACE=os.path.join(self.raw, "%s.%s.%%p.jsonl" % (model, api)))
        argv = [kit.PYTHON, DRIVER, "record", "--model", model, "--batch", str(TRACE_BATCH)]
        res = ctx.run("record %s %s" % (model, api), argv, env, timeout=ctx.budget(2, each=60),
                      log="traces/record.%s.%s.out" % (model, api))
        return model, api, res

    def record(self):
        """Records every trace, PARALLEL processes at a time; moves them to recorded/."""
        jobs = [(m, "legacy") for m in self.models] + [(self.models[0], "default")]
        if self.ctx.dry_run:
            for model, api in jobs:
                self.record_one(model, api)
            return
        for stale in glob.glob(os.path.join(self.raw, "*")) + glob.glob(os.path.join(self.recorded, "*")):
            os.remove(stale)
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(lambda job: self.record_one(*job), jobs))
        for model, api, res in results:
            files = sorted(glob.glob(os.path.join(self.raw, "%s.%s.*.jsonl" % (model, api))),
                           key=os.path.getsize)
            name = "%s.%s.jsonl" % (model, api)
            if not res.ok or not files:
                self.step.check("record %s" % name, res.status() if not res.ok else "fail",
                                res.why() if not res.ok else "no trace written")
                continue
            dest = os.path.join(self.recorded, name)
            shutil.move(files[-1], dest)
            rows = kit.read_jsonl(dest)
            ops = [r.get("op") for r in rows[1:]]
            info = {"file": name, "bytes": os.path.getsize(dest), "ops": len(ops),
                    "conv_fwd": ops.count("conv_fwd") + ops.count("conv_bias_act"),
                    "bn_inference": ops.count("bn_inference"), "opaque": ops.count("opaque"),
                    "cudnn_version": (rows[0] if rows else {}).get("cudnn_version")}
            self.step.data["recorded"].append(info)
            self.step.check("record %s" % name, "pass", "%d ops: %d conv, %d BN inference, %d opaque" % (
                info["ops"], info["conv_fwd"], info["bn_inference"], info["opaque"]))

    def validate(self, traces):
        """scripts/gen-traces.py --check on the recorded traces."""
        res = self.ctx.run("gen-traces --check", [kit.PYTHON, os.path.join(self.ctx.repo, "scripts",
                                                                            "gen-traces.py"), "--check"] + traces,
                           {}, timeout=60, log="traces/check.out")
        self.step.check_job("recorded traces pass gen-traces.py --check", res, "%d traces valid" % len(traces),
                            log="traces/check.out")

    def bench(self, label, args, traces, timeout):
        """Runs convbn-bench under the shim over the real libraries; keeps its stdout."""
        ctx = self.ctx
        env = ctx.c_env("real", preload=[ctx.shim])
        res = ctx.run("convbn-bench " + label, [ctx.bench] + args + traces, env, timeout=timeout,
                      log="traces/bench.%s.out" % label)
        if res.dry:
            return
        self.step.data["bench"][label] = {"rc": res.rc, "timed_out": res.timed_out,
                                          "stdout": res.stdout[-6000:]}
        self.step.check_job("convbn-bench %s" % label, res, "%d traces" % len(traces),
                            log="traces/bench.%s.out" % label)

    def pack(self):
        """Writes OUT/traces-recorded.tar.gz with the recorded traces (flat names)."""
        files = sorted(glob.glob(os.path.join(self.recorded, "*.jsonl")))
        if not files:
            return
        path = os.path.join(self.ctx.out, TARBALL)
        with tarfile.open(path, "w:gz") as tar:
            for f in files:
                tar.add(f, arcname=os.path.basename(f))
        self.step.data["tarball"] = {"file": TARBALL, "bytes": os.path.getsize(path), "traces": len(files)}
        self.step.note("copy the traces into the repository: mkdir -p bench/traces/recorded && "
                       "tar -xzf %s -C bench/traces/recorded" % TARBALL)
        self.step.save()

    def run(self):
        """Record, validate, bench, pack."""
        ctx = self.ctx
        if not ctx.dry_run and not os.path.isfile(ctx.bench):
            self.step.check("bench present", "error", "%s not built (make %s before the call)" % (
                ctx.rel(ctx.bench), ctx.rel(ctx.bench)))
        self.record()
        recorded = sorted(glob.glob(os.path.join(self.recorded, "*.jsonl")))
        if ctx.dry_run:
            recorded = [os.path.join(self.recorded, "MODEL.legacy.jsonl")]
        if recorded:
            self.pack()
            self.validate(recorded)
            self.bench("summary", ["--summary", "--json", ctx.path("traces", "summary.json")],
                       recorded, timeout=ctx.budget(2, each=40))
            legacy = [t for t in recorded if t.endswith(".legacy.jsonl")]
            self.bench("recorded", ["-n", "5", "-w", "1", "--json", ctx.path("traces", "bench-recorded.json")],
                       legacy, timeout=ctx.budget(1, each=40))
        bundled = sorted(glob.glob(os.path.join(ctx.repo, "bench", "traces", "*.jsonl")))
        if bundled:
            self.bench("bundled", ["-n", "5", "-w", "1", "--json", ctx.path("traces", "bench-bundled.json")],
                       bundled, timeout=ctx.budget(0))


def main():
    """Entry point."""
    Traces(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
