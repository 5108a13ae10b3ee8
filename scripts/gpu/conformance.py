"""Step b, emulation conformance: each e2e cuDNN program runs twice on the GPU machine,
without the shim, once over the CPU emulation of the build (LD_LIBRARY_PATH=BUILD/emu; it is
plain C and runs anywhere) and once over the real cuDNN and CUDA runtime, and the outputs
are compared:

  resnet_seq    per type and layout: --out files within the chained tolerance of
                tests/e2e/run.sh (close_enough), stdout identical
  hazards       every scenario that runs on real CUDA: --out files within fp32 tolerance
  differential  both within the program's own tolerances of its double reference; the
                worst errors side by side
  passthrough   stdout identical line by line, except the cuDNN version line

The real runs set NVIDIA_TF32_OVERRIDE=0: the emulation computes fp32 convolutions in fp32.
Every difference is a bug in the emulation or an undocumented behaviour of cuDNN: the
report lists each one.
"""

import os

import kit
import numerics

IGNORED_PASSTHROUGH = ("cudnnGetVersion ",)


class Conformance:
    """Runs the paired programs and records the comparisons."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.step = kit.StepResult(ctx, "conformance", "Emulation conformance: emulation vs real cuDNN")
        self.step.data.update({"comparisons": [], "differences": []})
        self.prog = lambda name: os.path.join(ctx.e2e, name)

    def pair(self, tag, argv_for, timeout=120):
        """Runs argv_for(side) over the emulation and over the real libraries.  Returns
        {side: JobResult}."""
        results = {}
        for side in ("emu", "real"):
            results[side] = self.ctx.run("%s %s" % (tag, side), argv_for(side), self.ctx.c_env(side),
                                         timeout=timeout, log="conformance/%s.%s.log" % (tag, side))
        return results

    def record(self, program, config, status, detail, **extra):
        """Records one comparison as a check, a table row and, when it differs, a difference."""
        row = {"program": program, "config": config, "status": status, "detail": detail}
        row.update(extra)
        self.step.data["comparisons"].append(row)
        if status == "fail":
            self.step.data["differences"].append(
                "%s %s: %s (a bug in the emulation or in what it assumes of cuDNN)" % (program, config, detail))
        self.step.check("%s %s" % (program, config), status, detail)

    def both_ran(self, program, config, results):
        """Returns True when both runs succeeded, else records why not."""
        if any(r.dry for r in results.values()):
            return False
        bad = [(side, r) for side, r in results.items() if not r.ok]
        if not bad:
            return True
        # One side failing is a difference between them; both failing is the program's.
        status = "error" if len(bad) == len(results) else "fail"
        self.record(program, config, status, "; ".join("%s: %s" % (s, r.why()) for s, r in bad))
        return False

    def close(self, type_name, tol, tag):
        """Compares the two --out files of tag with close_enough; returns (ok, detail)."""
        files = [self.ctx.path("conformance", "%s.%s.bin" % (tag, side)) for side in ("emu", "real")]
        res = self.ctx.run("close_enough " + tag, [self.prog("close_enough"), type_name, str(tol)] + files,
                           {}, timeout=30, log="conformance/%s.cmp.log" % tag)
        return res.ok, res.stdout.strip() or res.why()

    def resnet(self):
        """resnet_seq per type and layout."""
        configs = [("float", "nchw"), ("half", "nhwc")] if self.ctx.quick else \
            [(t, l) for t in numerics.TYPES for l in numerics.LAYOUTS]
        for type_name, layout in configs:
            tag = "resnet.%s.%s" % (type_name, layout)
            config = "%s %s" % (type_name, layout)
            results = self.pair(tag, lambda side, t=tag, ty=type_name, la=layout: [
                self.prog("resnet_seq"), "--type", ty, "--layout", la, "--out",
                self.ctx.path("conformance", "%s.%s.bin" % (t, side))])
            if results["emu"].dry:
                self.close(type_name, kit.CHAIN_TOLERANCE[type_name], tag)
            if not self.both_ran("resnet_seq", config, results):
                continue
            ok, detail = self.close(type_name, kit.CHAIN_TOLERANCE[type_name], tag)
            if results["emu"].stdout != results["real"].stdout:
                ok, detail = False, detail + "; stdout differs"
            self.record("resnet_seq", config, "pass" if ok else "fail", detail)

    def hazards(self):
        """Every hazard scenario that runs on real CUDA, without the shim."""
        seen = set()
        for scenario, _, _, _, base_args in numerics.HAZARDS:
            if scenario in seen or (scenario in numerics.EMULATION_ONLY and not self.ctx.emulation):
                continue
            seen.add(scenario)
            tag = "hazard.%s" % scenario
            def argv(side, s=scenario, a=base_args, t=tag):
                out = self.ctx.path("conformance", "%s.%s.bin" % (t, side))
                return [self.prog("hazards"), s] + list(a) + ["--out", out]
            results = self.pair(tag, argv, timeout=60)
            if results["emu"].dry:
                self.close("float", 1e-5, tag)
            if not self.both_ran("hazards", scenario, results):
                continue
            ok, detail = self.close("float", 1e-5, tag)
            self.record("hazards", scenario, "pass" if ok else "fail", detail)

    def differential(self):
        """differential without the shim on both sides."""
        n = "100" if self.ctx.quick else "600"
        results = self.pair("differential", lambda side: [self.prog("differential"), "--cases", n], 180)
        if not self.both_ran("differential", n + " cases", results):
            return
        parsed = {side: numerics.parse_differential(r.stdout) for side, r in results.items()}
        detail = "; ".join("%s: %s" % (side, numerics.worst_text(p)) for side, p in parsed.items())
        self.record("differential", n + " cases", "pass", detail,
                    worst={side: p.get("worst") for side, p in parsed.items()})

    def passthrough(self):
        """passthrough's stdout line by line (statuses of good and bad calls)."""
        results = self.pair("passthrough", lambda side: [self.prog("passthrough")], 30)
        if not self.both_ran("passthrough", "statuses", results):
            return
        emu, real = (results[s].stdout.splitlines() for s in ("emu", "real"))
        diffs = []
        for i in range(max(len(emu), len(real))):
            a = emu[i] if i < len(emu) else "<missing>"
            b = real[i] if i < len(real) else "<missing>"
            if a != b and not a.startswith(IGNORED_PASSTHROUGH):
                diffs.append("line %d: emulation %r, real %r" % (i + 1, a[:120], b[:120]))
        versions = [l for l in real if l.startswith("cudnnGetVersion ")]
        if versions:
            self.step.note("real %s" % versions[0])
        self.record("passthrough", "statuses", "fail" if diffs else "pass",
                    "; ".join(diffs[:5]) if diffs else "%d lines identical" % len(emu))

    def run(self):
        """Runs every comparison."""
        if self.ctx.emulation:
            self.step.note("--emulation: both sides are the emulation; this only tests the kit")
        self.resnet()
        self.hazards()
        self.differential()
        self.passthrough()


def main():
    """Entry point."""
    Conformance(kit.parse_args(__doc__)).run()


if __name__ == "__main__":
    kit.main_guard(main)
