"""Step a, real-cuDNN numerics: the e2e cuDNN programs of the build run against the REAL
libcudnn and libcudart (LD_LIBRARY_PATH names pip's nvidia lib directories first, so the
emulation named by the programs' RUNPATH is never reached), without the shim and with it,
with the tolerances they enforce under the emulation:

  differential   600 random conv -> BN pairs against a double reference: without the shim,
                 fused (CONVBN_MODE=fuse, several seeds, every pair must fuse), fused with
                 CONVBN_VERIFY=1, observed (nothing fused); then, for information, with
                 cuDNN's default math (TF32 allowed: the other runs set NVIDIA_TF32_OVERRIDE=0)
  resnet_seq     the ResNet-style program per type and layout: fused within the chained
                 tolerance of tests/e2e/run.sh, observed byte-identical
  hazards        every scenario of `hazards --list` as tests/e2e/run.sh runs it (byte-
                 identical where the shim must not fuse, within fp32 tolerance where it may)
  backend        tests/e2e/backend_seq (PyTorch 2.x's backend conv graphs): the network per
                 type and layout fused vs without the shim, --diff fused with the shim's own
                 backend graph and with CONVBN_BACKEND_GRAPH=0, --bn backend; the graphs
                 built and refused and their build times (numerics_backend.py)

The exit summary of the fused runs says which fold ran (fold=cuda is the CUDA kernel).
The backend runs go before the hazards: whether real cuDNN accepts the shim's backend
graphs is the newest unknown, so a step short of time drops hazards first.
"""

import filecmp
import os
import re

import kit
import logparse
import numerics_backend

DIFF_RE = re.compile(r"^differential: (\d+) cases, (?:without the shim|(\d+) fused), "
                     r"worst error per type(.*)$", re.M)
WORST_RE = re.compile(r"(float|half|bfloat16) (\S+) \(tolerance (\S+), (\d+) cases\)")

TYPES = ("float", "half", "bfloat16")
LAYOUTS = ("nchw", "nhwc")

# Scenario, comparison with the run without the shim (exact or close), CONVBN_MODE, grad
# mode of the libc10 stand-in (None: not preloaded), extra arguments of the baseline run:
# the cases of tests/e2e/run.sh.
HAZARDS = (
    ("kernel-reads-y", "exact", "fuse", None, ()),
    ("kernel-writes-y", "exact", "fuse", None, ()),
    ("add-tensor-full", "exact", "fuse", None, ()),
    ("add-tensor-scaled-bias", "exact", "fuse", None, ()),
    ("op-tensor-bias", "exact", "fuse", None, ()),
    ("memcpy-to-host", "exact", "fuse", None, ()),
    ("memcpy-async-to-host", "exact", "fuse", None, ()),
    ("workspace-reuse", "exact", "fuse", None, ()),
    ("exit-pending", "exact", "fuse", None, ()),
    ("alias-input", "exact", "fuse", None, ()),
    ("alias-partial", "exact", "fuse", None, ()),
    ("grad-mode", "exact", "auto", "1", ()),
    ("no-hazard", "close", "fuse", None, ()),
    ("bn-in-place", "close", "fuse", None, ()),
    ("descriptors-destroyed", "close", "fuse", None, ()),
    ("workspace-as-output", "close", "fuse", None, ()),
    ("two-streams", "close", "fuse", None, ()),
    ("two-streams", "close", "auto", "0", ()),
    ("threads", "close", "fuse", None, ("--serial",)),
    ("threads", "close", "auto", "0", ("--serial",)),
    ("threads-grad-one", "close", "auto", "0", ("--serial",)),
)

# Scenarios that register a host function as a kernel (an emulation-only API).
EMULATION_ONLY = ("kernel-reads-y", "kernel-writes-y", "kernel-adds-bias")


def parse_differential(stdout):
    """Returns {"cases", "fused" (None without the shim), "worst": {type: error},
    "tolerance": {type: tol}} from differential's summary line, or {}."""
    m = DIFF_RE.search(stdout)
    if not m:
        return {}
    worst, tol = {}, {}
    for name, err, limit, _ in WORST_RE.findall(m.group(3)):
        worst[name] = float(err)
        tol[name] = float(limit)
    return {"cases": int(m.group(1)), "fused": int(m.group(2)) if m.group(2) else None,
            "worst": worst, "tolerance": tol}


def unknown_case(scenario, mode_text):
    """Returns a HAZARDS entry for a scenario the table lacks, from its `--list` mode
    column (`fuse`, `fuse or auto`, `auto`, `auto, grad mode on`)."""
    if mode_text.startswith("fuse"):
        return (scenario, "close", "fuse", None, ())
    return (scenario, "close", "auto", "1" if "grad mode on" in mode_text else "0", ())


def worst_text(parsed):
    """Returns `float 2.4e-07 half 1.3e-03 ...` for a parse_differential result."""
    return " ".join("%s %.2g" % (t, parsed["worst"][t]) for t in TYPES if t in parsed.get("worst", {}))


class Numerics:
    """Runs the checks of this step and records them."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "numerics", "Real-cuDNN numerics: fused vs unfused")
        self.cases = 100 if ctx.quick else 600
        self.prog = lambda name: os.path.join(ctx.e2e, name)
        self.step.data.update({"differential": [], "resnet_seq": [], "hazards": [],
                               "backend": [], "fold_backend": None, "backend_path": None})

    def shim_env(self, mode, log, **extra):
        """Environment of a run over the real libraries with the shim in `mode`."""
        return self.ctx.c_env("real", preload=[self.ctx.shim], CONVBN_MODE=mode, CONVBN_STATS=1,
                              CONVBN_LOG_FILE=self.ctx.path(log), **extra)

    def differential(self, label, env, args, expect_fused=None, log=None, info=False):
        """Runs differential once and records a check (status info when info=True)."""
        logname = "numerics/differential.%s.log" % re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        res = self.ctx.run("differential " + label, [self.prog("differential")] + args, env,
                           timeout=120, log=logname)
        if res.dry:
            return
        parsed = parse_differential(res.stdout)
        summary = logparse.parse_summary(logparse.read(self.ctx.path(log))) if log else {}
        if summary.get("fold"):
            self.step.data["fold_backend"] = self.step.data["fold_backend"] or summary["fold"]
        row = {"run": label, "rc": res.rc, "timed_out": res.timed_out}
        row.update(parsed)
        row["summary"] = summary
        self.step.data["differential"].append(row)
        counts_ok = expect_fused is None or parsed.get("fused") == expect_fused
        if res.ok and parsed and counts_ok:
            status, detail = "pass", worst_text(parsed)
        elif res.ok:
            status = "fail"
            detail = ("fused %s, expected %s" % (parsed.get("fused"), expect_fused) if parsed
                      else "no summary line on stdout")
        else:
            status, detail = res.status(), res.why(4)
        if status != "pass" and summary:
            detail += " [" + logparse.summary_text(summary) + "]"
        if info:
            status = "info"
        self.step.check("differential: " + label, status, detail, log=logname)

    def run_differential(self):
        """The differential runs: unfused, fused per seed, verify, observe, TF32 allowed."""
        n = str(self.cases)
        ctx = self.ctx
        self.differential("%s cases, no shim" % n, ctx.c_env("real"), ["--cases", n])
        for seed in ([1] if ctx.quick else [1, 2, 3]):
            log = "numerics/differential.fuse.seed%d.summary" % seed
            self.differential("%s cases fused, seed %d" % (n, seed), self.shim_env("fuse", log),
                              ["--cases", n, "--seed", str(seed)], expect_fused=self.cases, log=log)
        log = "numerics/differential.verify.summary"
        self.differential("100 cases fused, CONVBN_VERIFY=1", self.shim_env("fuse", log, CONVBN_VERIFY=1),
                          ["--cases", "100"], expect_fused=100, log=log)
        log = "numerics/differential.observe.summary"
        self.differential("%s cases observed, none fused" % n, self.shim_env("observe", log),
                          ["--cases", n, "--expect-fused", "0"], expect_fused=0, log=log)
        if not ctx.emulation:
            self.differential("%s cases, no shim, TF32 allowed (information)" % n,
                              ctx.c_env("real", NVIDIA_TF32_OVERRIDE=""), ["--cases", n], info=True)
            log = "numerics/differential.fuse.tf32.summary"
            self.differential("%s cases fused, TF32 allowed (information)" % n,
                              self.shim_env("fuse", log, NVIDIA_TF32_OVERRIDE=""),
                              ["--cases", n], log=log, info=True)

    def compare(self, kind, type_name, tol, got, ref, log):
        """Compares two output files: exact (bytes) or close (close_enough).  Returns
        (ok, detail)."""
        if kind == "exact":
            same = os.path.isfile(got) and os.path.isfile(ref) and filecmp.cmp(got, ref, shallow=False)
            return same, "byte-identical" if same else "outputs differ from the run without the shim"
        res = self.ctx.run("close_enough", [self.prog("close_enough"), type_name, str(tol), got, ref],
                           {}, timeout=30, log=log)
        return res.ok, (res.stdout.strip() or res.why())

    def run_resnet(self):
        """resnet_seq per type and layout: fused within tolerance, observed byte-identical."""
        configs = [("float", "nchw"), ("half", "nhwc")] if self.ctx.quick else \
            [(t, l) for t in TYPES for l in LAYOUTS]
        for type_name, layout in configs:
            tag = "%s.%s" % (type_name, layout)
            base = self.ctx.path("numerics", "resnet.%s.base.bin" % tag)
            args = [self.prog("resnet_seq"), "--type", type_name, "--layout", layout]
            res = self.ctx.run("resnet_seq base " + tag, args + ["--out", base], self.ctx.c_env("real"),
                               timeout=60, log="numerics/resnet.%s.base.log" % tag)
            if not res.dry and not res.ok:
                self.step.check("resnet_seq %s %s without the shim" % (type_name, layout),
                                res.status(), res.why())
                continue
            for mode, fused, kind in (("fuse", 15, "close"), ("observe", 0, "exact")):
                self.resnet_mode(args, tag, base, mode, fused, kind, type_name, layout)

    def resnet_mode(self, args, tag, base, mode, fused, kind, type_name, layout):
        """One resnet_seq run under the shim, compared with the run without it."""
        got = self.ctx.path("numerics", "resnet.%s.%s.bin" % (tag, mode))
        log = "numerics/resnet.%s.%s.summary" % (tag, mode)
        res = self.ctx.run("resnet_seq %s %s" % (mode, tag),
                           args + ["--out", got, "--expect-pairs", "15", "--expect-fused", str(fused)],
                           self.shim_env(mode, log), timeout=60,
                           log="numerics/resnet.%s.%s.log" % (tag, mode))
        name = "resnet_seq %s %s %s (15 pairs, %d fused)" % (type_name, layout, mode, fused)
        if res.dry:
            self.compare(kind, type_name, kit.CHAIN_TOLERANCE[type_name], got, base,
                         "numerics/resnet.%s.%s.cmp.log" % (tag, mode))
            return
        summary = logparse.parse_summary(logparse.read(self.ctx.path(log)))
        if not res.ok:
            self.step.check(name, res.status(), res.why() + " [" + logparse.summary_text(summary) + "]")
            return
        ok, detail = self.compare(kind, type_name, kit.CHAIN_TOLERANCE[type_name], got, base,
                                  "numerics/resnet.%s.%s.cmp.log" % (tag, mode))
        self.step.data["resnet_seq"].append({"type": type_name, "layout": layout, "mode": mode,
                                             "ok": ok, "detail": detail, "summary": summary})
        self.step.check(name, "pass" if ok else "fail", detail)

    def hazard_list(self):
        """Returns {scenario: mode column} as `hazards --list` prints them (the kit's table
        in a dry run)."""
        res = self.ctx.run("hazards --list", [self.prog("hazards"), "--list"], self.ctx.c_env("real"),
                           timeout=20, log="numerics/hazards.list.log")
        if res.dry or not res.ok:
            return {h[0]: h[2] for h in HAZARDS}
        listed = {}
        for line in res.stdout.splitlines():
            parts = re.split(r"\s{2,}", line.strip())
            if parts and parts[0]:
                listed[parts[0]] = parts[1] if len(parts) > 1 else "fuse"
        return listed

    def run_hazards(self):
        """Every hazard scenario as tests/e2e/run.sh runs it; a scenario the kit's table
        does not know runs in the mode `hazards --list` gives, compared within tolerance."""
        listed = self.hazard_list()
        known = {h[0] for h in HAZARDS}
        cases = list(HAZARDS) + [unknown_case(s, mode) for s, mode in listed.items() if s not in known]
        for scenario, kind, mode, grad, base_args in cases:
            name = "hazards %s (%s%s)" % (scenario, mode, ", grad mode %s" % grad if grad else "")
            if scenario in EMULATION_ONLY and not self.ctx.emulation:
                self.step.check(name, "skipped", "needs the emulation's host-kernel registration "
                                "(emu_register_kernel); the real runtime has no such API")
                continue
            if scenario not in listed:
                self.step.check(name, "skipped", "not in `hazards --list` of this build")
                continue
            self.hazard(name, scenario, kind, mode, grad, base_args, scenario not in known)

    def hazard(self, name, scenario, kind, mode, grad, base_args, unknown):
        """One hazard scenario: without the shim, then under it; compares the outputs."""
        tag = "%s.%s%s" % (scenario, mode, grad or "")
        base = self.ctx.path("numerics", "hazard.%s.base.bin" % tag)
        got = self.ctx.path("numerics", "hazard.%s.shim.bin" % tag)
        prog = self.prog("hazards")
        res = self.ctx.run("hazards base " + tag, [prog, scenario] + list(base_args) + ["--out", base],
                           self.ctx.c_env("real"), timeout=60, log="numerics/hazard.%s.base.log" % tag)
        if not res.dry and not res.ok:
            self.step.check(name, res.status(), "without the shim: " + res.why())
            return
        preload = [self.ctx.shim] + ([self.ctx.libc10] if grad else [])
        env = self.ctx.c_env("real", preload=preload, CONVBN_MODE=mode, CONVBN_STATS=1,
                             CONVBN_LOG_FILE=self.ctx.path("numerics/hazard.%s.summary" % tag),
                             CONVBN_TEST_GRAD_MODE=grad)
        res = self.ctx.run("hazards shim " + tag, [prog, scenario, "--out", got], env, timeout=60,
                           log="numerics/hazard.%s.shim.log" % tag)
        if res.dry:
            self.compare(kind, "float", 1e-5, got, base, "numerics/hazard.%s.cmp.log" % tag)
            return
        if not res.ok:
            self.step.check(name, res.status(), "under the shim: " + res.why())
            return
        ok, detail = self.compare(kind, "float", 1e-5, got, base, "numerics/hazard.%s.cmp.log" % tag)
        counters = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        self.step.data["hazards"].append({"scenario": scenario, "mode": mode, "grad": grad,
                                          "ok": ok, "counters": counters})
        if unknown:
            detail += " (scenario not in the kit's table: compared within tolerance)"
        self.step.check(name, "pass" if ok else "fail", "%s; %s" % (detail, counters))

    def run_backend(self):
        """tests/e2e/backend_seq: the backend (graph) API path (numerics_backend.py)."""
        numerics_backend.BackendChecks(self).run()

    def fold_check(self):
        """Whether the fused runs used the CUDA fold kernel (fold=cuda in the summary)."""
        fold = self.step.data.get("fold_backend")
        if self.ctx.dry_run:
            return
        if fold == "cuda":
            self.step.check("CUDA fold kernel used", "pass", "summary says fold=cuda")
        else:
            status = "info" if self.ctx.emulation else "fail"
            self.step.check("CUDA fold kernel used", status, "summary says fold=%s" % fold)

    def run(self):
        """Runs every part of the step."""
        missing = [p for p in ("differential", "resnet_seq", "hazards", "close_enough")
                   if not os.path.isfile(self.prog(p))]
        if missing and not self.ctx.dry_run:
            self.step.check("e2e programs present", "error", "not built: %s (run `make e2e-check` "
                            "before the call)" % ", ".join(missing))
        self.run_differential()
        self.fold_check()
        self.run_resnet()
        self.run_backend()
        self.run_hazards()


def main():
    """Entry point."""
    Numerics(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
