"""Step e, training with frozen BN: resnet18 (random weights) trains with every BatchNorm
in eval mode and autograd on, SGD, 5 steps, deterministic cuDNN, with a no_grad
validation pass between steps (a validation loop inside train.py).  Per PyTorch cuDNN path
(legacy first: the one the shim sees pairs on today):

  base      no shim
  shim      LD_PRELOAD=libconvbn_shim.so, CONVBN_MODE=auto: grad mode on, so no pair of the
            training steps may fuse (DESIGN.md section 2); the validation pass may
  repeat    no shim again: shows that the baseline itself is deterministic

Losses, final gradients and parameters must be bit-identical between base and shim
(compared tensor by tensor), the validation output within tolerance.  Also recorded: the
shim's report of the conv outputs the framework keeps for gradients (what a
framework-level Tune mode would free), next to torch.cuda.max_memory_allocated.
"""

import os

import kit
import logparse

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_driver.py")
RUNS = ("base", "shim", "repeat")
VALIDATION_TOLERANCE = 5e-3


class Training:
    """Runs the training processes per path and compares their tensors."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "training", "Training with frozen BN: bit-identical, memory report")
        self.batch, self.size = (8, 112) if ctx.quick else (32, 224)
        self.step.data.update({"model": "resnet18", "steps": 5, "batch": self.batch,
                               "size": self.size, "runs": []})

    def train(self, api, run, later):
        """One training process; returns its JobResult."""
        ctx = self.ctx
        env = ctx.py_env(preload=run == "shim", api=api, CUBLAS_WORKSPACE_CONFIG=":4096:8")
        if run == "shim":
            env.update({"CONVBN_MODE": "auto", "CONVBN_STATS": "1",
                        "CONVBN_LOG_FILE": ctx.path("training", "%s.shim.log" % api)})
        argv = [kit.PYTHON, DRIVER, "train", "--model", "resnet18", "--steps", "5",
                "--batch", str(self.batch), "--size", str(self.size),
                "--save", ctx.path("training", "%s.%s.pt" % (api, run)),
                "--out", ctx.path("training", "%s.%s.json" % (api, run))]
        return ctx.run("train %s %s" % (api, run), argv, env, timeout=ctx.budget(later, each=25),
                       log="training/%s.%s.out" % (api, run))

    def run_api(self, api, later):
        """base, shim, repeat and their comparison for one path."""
        ctx = self.ctx
        results = {}
        for i, run in enumerate(RUNS):
            results[run] = self.train(api, run, later + len(RUNS) - i)
        out = ctx.path("training", "%s.compare.json" % api)
        pts = [ctx.path("training", "%s.%s.pt" % (api, run)) for run in RUNS]
        cmp_res = ctx.run("compare %s" % api, [kit.PYTHON, DRIVER, "compare", "--out", out] + pts,
                          ctx.py_env(), timeout=ctx.budget(later, each=25),
                          log="training/%s.compare.out" % api)
        if cmp_res.dry:
            return
        for run, res in results.items():
            if not res.ok:
                self.step.check("%s path: training run %s" % (api, run), res.status(), res.why())
        self.record(api, kit.read_json(out, {}), cmp_res)

    def record(self, api, verdicts, cmp_res):
        """Records the comparisons, the memory report and the validation pass of one path."""
        ctx = self.ctx
        docs = {run: kit.read_json(ctx.path("training", "%s.%s.json" % (api, run)), {}) for run in RUNS}
        summary = logparse.parse_summary(logparse.read(ctx.path("training", "%s.shim.log" % api)))
        shim_v = verdicts.get("%s.shim.pt" % api, {})
        repeat_v = verdicts.get("%s.repeat.pt" % api, {})
        per_step = [(d or {}).get("bytes_kept_for_grad") for d in docs["shim"].get("counters_per_step") or []]
        entry = {"api": api, "shim_vs_base": shim_v, "repeat_vs_base": repeat_v, "summary": summary,
                 "losses": {run: docs[run].get("losses") for run in RUNS},
                 "max_memory_allocated": {run: docs[run].get("max_memory_allocated") for run in RUNS},
                 "kept_for_gradients_bytes": summary.get("kept_for_gradients_bytes"),
                 "kept_for_gradients_per_step": per_step,
                 "validation_counters": docs["shim"].get("counters_validation")}
        self.step.data["runs"].append(entry)
        self.step.save()
        if docs["shim"] and not (docs["shim"].get("versions") or {}).get("shim_preloaded"):
            self.step.check("%s path: shim loaded in the shim run" % api, "error",
                            "convbn_get_counters not found in the process: LD_PRELOAD was ignored")
        if not verdicts:
            self.step.check("%s path: comparison" % api, "error", cmp_res.why())
            return
        self.identical_check(api, shim_v, repeat_v)
        kept = entry["kept_for_gradients_bytes"]
        peak = entry["max_memory_allocated"].get("shim")
        if kept is None:
            kept_text = "the shim reported no conv output kept for gradients"
        else:
            kept_text = "%d bytes over 5 steps (%s per step)" % (kept, per_step[0] if per_step else "?")
        self.step.check("%s path: conv outputs kept for gradients" % api, "info",
                        "%s; torch.cuda.max_memory_allocated %s bytes" % (kept_text, peak))
        val = shim_v.get("validation")
        if val:
            fused = (entry["validation_counters"] or {}).get("pairs_fused")
            ok = val["max_rel"] <= VALIDATION_TOLERANCE
            self.step.check("%s path: no_grad validation between steps" % api, "pass" if ok else "fail",
                            "fused %s pairs, max rel error %.3g (tolerance %g)" % (
                                fused, val["max_rel"], VALIDATION_TOLERANCE))

    def identical_check(self, api, shim_v, repeat_v):
        """Bit-identical losses, gradients and parameters with and without the shim."""
        name = "%s path: losses, gradients, parameters bit-identical with the shim" % api
        if "bit_identical" not in shim_v:
            self.step.check(name, "error", shim_v.get("error", "no comparison"))
            return
        detail = "losses equal %s, gradients differing %d of %d, parameters differing %d of %d" % (
            shim_v["losses_equal"], shim_v["grads"]["different"], shim_v["grads"]["tensors"],
            shim_v["params"]["different"], shim_v["params"]["tensors"])
        if shim_v["bit_identical"]:
            self.step.check(name, "pass", detail)
        elif repeat_v.get("bit_identical") is False:
            self.step.check(name, "error", "inconclusive: two runs without the shim differ too; " + detail)
        else:
            self.step.check(name, "fail", detail + ", max abs difference %g" % max(
                shim_v["grads"]["max_abs"], shim_v["params"]["max_abs"]))

    def run(self):
        """Both paths, legacy first."""
        self.run_api("legacy", later=len(RUNS) + 1)
        self.run_api("default", later=0)


def main():
    """Entry point."""
    Training(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
