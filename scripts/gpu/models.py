"""Step d, models: torchvision models with random weights (weights=None; BN statistics
randomised so that folding is not the identity) in eval mode under torch.no_grad(), batch
64, fp32 NCHW and fp16 channels_last.  Per model and configuration: the conv -> BN pairs
the shim saw and fused per forward pass (its counters), the largest output error with the
shim against without it, and images/s (median of the timed iterations after warm-up) for
no shim, the shim, and the model with BN folded offline (torch.fx), all in the same run.

The shim can only be preloaded per process, so the driver (torch_driver.py models) runs
once per configuration, in this order, for PyTorch's default cuDNN path and for its legacy
path (TORCH_CUDNN_V8_API_DISABLED=1, the one the shim fuses today):
  none    no shim: eager and folded, outputs saved
  shim    LD_PRELOAD=libconvbn_shim.so, CONVBN_MODE=auto (grad mode off: fuse): eager,
          outputs compared with the saved ones
"""

import os

import kit

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_driver.py")
MODELS = ("resnet50", "resnet18", "mobilenet_v2", "resnext50_32x4d", "regnet_y_400mf",
          "efficientnet_b0", "vgg16_bn")
QUICK_MODELS = ("resnet18", "mobilenet_v2")
# Largest |shim - none| / max(1, |none|) over the logits accepted per configuration.
TOLERANCE = {"fp32-nchw": 5e-3, "fp16-cl": 5e-2}
APIS = ("default", "legacy")


def combine(rows):
    """Returns {(api, model, config): {"none": row, "shim": row, "folded": row}} from the
    driver's rows, and the list of error rows (a model that failed as a whole)."""
    table, failures = {}, []
    for row in rows:
        if row.get("kind") == "row":
            key = (row["api"], row["model"], row["config"])
            table.setdefault(key, {})[row["variant"]] = row
        elif row.get("kind") in ("error", "skipped"):
            failures.append(row)
    return table, failures


def summary_row(api, model, config, variants):
    """Returns the report row of one (api, model, config)."""
    none, shim, folded = (variants.get(v, {}) for v in ("none", "shim", "folded"))
    row = {"api": api, "model": model, "config": config,
           "none_ips": none.get("images_per_s"), "shim_ips": shim.get("images_per_s"),
           "folded_ips": folded.get("images_per_s"),
           "pairs_per_forward": shim.get("pairs_per_forward"),
           "fused_per_forward": shim.get("fused_per_forward"),
           "shim_max_rel": (shim.get("vs_none") or {}).get("max_rel"),
           "shim_max_abs": (shim.get("vs_none") or {}).get("max_abs"),
           "folded_max_rel": (folded.get("vs_none") or {}).get("max_rel"),
           "bn_modules": none.get("bn_modules"), "bn_after_fold": folded.get("bn_modules"),
           "errors": {v: r["error"] for v, r in variants.items() if r.get("error")}}
    if row["none_ips"] and row["shim_ips"]:
        row["shim_speedup"] = round(row["shim_ips"] / row["none_ips"], 3)
    if row["none_ips"] and row["folded_ips"]:
        row["folded_speedup"] = round(row["folded_ips"] / row["none_ips"], 3)
    return row


def judge(row):
    """Returns (status, detail) of one row: the shim's output within TOLERANCE, and
    bit-identical where nothing was fused (invariant 1)."""
    if row["errors"].get("shim") or row["errors"].get("none"):
        return "error", "; ".join("%s: %s" % kv for kv in sorted(row["errors"].items()))
    if row["shim_max_rel"] is None:
        return "error", "no comparison (a run is missing)"
    fused = row.get("fused_per_forward") or 0
    detail = "pairs/forward %.1f, fused/forward %.1f, max rel error %.3g, img/s none %s shim %s folded %s" % (
        row.get("pairs_per_forward") or 0, fused, row["shim_max_rel"], row["none_ips"],
        row["shim_ips"], row["folded_ips"])
    if not fused and row["shim_max_abs"]:
        return "fail", "nothing fused but outputs differ: " + detail
    if row["shim_max_rel"] > TOLERANCE[row["config"]]:
        return "fail", "error above %g: %s" % (TOLERANCE[row["config"]], detail)
    return "pass", detail


class Models:
    """Runs the four driver processes and records the table."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "models",
                                   "Models in eval mode under no_grad: fused pairs, error, throughput")
        self.models = ctx.models or list(QUICK_MODELS if ctx.quick else MODELS)
        self.iters, self.warmup = (5, 2) if ctx.quick else (20, 5)
        self.batch = 16 if ctx.quick else 64
        self.step.data.update({"models": self.models, "batch": self.batch, "iters": self.iters,
                               "warmup": self.warmup, "tolerance": TOLERANCE, "rows": []})

    def driver(self, api, variant, later):
        """Runs one driver process; returns its rows."""
        ctx = self.ctx
        out = ctx.path("models", "%s.%s.jsonl" % (api, variant))
        if os.path.exists(out) and not ctx.dry_run:
            os.remove(out)
        argv = [kit.PYTHON, DRIVER, "models", "--out", out, "--models", ",".join(self.models),
                "--variant", variant, "--api", api, "--tensors", os.path.dirname(out),
                "--batch", str(self.batch), "--iters", str(self.iters), "--warmup", str(self.warmup)]
        if variant == "none":
            argv.append("--folded")
        env = ctx.py_env(preload=variant == "shim", api=api)
        if variant == "shim":
            env.update({"CONVBN_MODE": "auto", "CONVBN_STATS": "1",
                        "CONVBN_LOG_FILE": ctx.path("models", "%s.shim.log" % api)})
        limit = ctx.budget(later, each=40)
        argv += ["--deadline", "%.0f" % (kit.now() + limit - 15)]
        res = ctx.run("models %s %s" % (api, variant), argv, env, timeout=limit,
                      log="models/%s.%s.out" % (api, variant))
        if res.dry:
            return []
        rows = kit.read_jsonl(out)
        versions = next((r for r in rows if r.get("kind") == "versions"), {})
        if variant == "shim" and versions and not versions.get("shim_preloaded"):
            self.step.check("shim loaded in the %s path's shim run" % api, "error",
                            "convbn_get_counters not found in the process: LD_PRELOAD was ignored")
        self.step.check_job("driver %s path, %s" % (api, "shim" if variant == "shim" else "no shim"),
                            res, "%d rows" % len(rows), log="models/%s.%s.out" % (api, variant))
        return rows

    def run(self):
        """Both paths, no shim then shim; records one check per model and configuration."""
        rows = []
        runs = [(api, variant) for api in APIS for variant in ("none", "shim")]
        for i, (api, variant) in enumerate(runs):
            rows += self.driver(api, variant, later=len(runs) - i - 1)
        if self.ctx.dry_run:
            return
        table, failures = combine(rows)
        for row in rows:
            if row.get("kind") == "versions":
                self.step.data.setdefault("versions", row)
        for failure in failures:
            self.step.check("%s %s path" % (failure.get("model"), failure.get("api", "")), "error",
                            failure.get("error") or failure.get("why", ""))
        for (api, model, config), variants in sorted(table.items()):
            row = summary_row(api, model, config, variants)
            self.step.data["rows"].append(row)
            status, detail = judge(row)
            self.step.check("%s %s %s path" % (model, config, api), status, detail)
        self.step.save()


def main():
    """Entry point."""
    Models(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
