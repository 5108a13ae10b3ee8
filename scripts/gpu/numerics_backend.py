"""Step a, backend (graph) API part: tests/e2e/backend_seq over the real libraries, driving
PyTorch 2.x's sequence (backend conv graphs, then a legacy or backend BN), without the shim
and with it.  The shim fuses each backend conv's pair through its own backend graph (the
folded conv plus a pointwise-add bias epilogue) and falls back to the legacy fused call
where cuDNN refuses that graph; whether real cuDNN's engines accept those graphs, per type
and layout, and how long a build takes is what these runs find out:

  network      backend_seq per type (float, half) and layout (nchw, nhwc): 6 pairs, all
               fused (CONVBN_MODE=fuse, CONVBN_LOG=1), outputs within the chained tolerance
               of tests/e2e/run.sh against the run without the shim
  diff         backend_seq --diff N (random conv -> BN pairs against its own double
               reference; its exit status says it): fused with CONVBN_BACKEND_GRAPH=0
               (the legacy fused call only, no graph may be built), and, last, with the
               graph (N geometries, N graph builds: the run whose time is least known)
  backend BN   --bn backend (PyTorch's BatchNorm_v8) fused against the run without the shim;
               --bn-kernel 1 under CONVBN_FLUSH=conservative (nothing pairs, byte-identical)
               and precise (all 6 fuse) only over the emulation: the inverse-std "kernel" is
               a host function registered with emu_register_kernel, which the real CUDA
               runtime does not have

Every fused run records the pairs fused, those fused as backend graphs (the summary's
`pairs fused as backend graphs`), the graphs built and refused and the worst build time
(the `fused backend graph built|refused` log lines) in the step's data under "backend".
"""

import os
import re

import kit
import logparse

TYPES = ("float", "half")
LAYOUTS = ("nchw", "nhwc")
NETWORK_PAIRS = 6
DIFF_CASES = 200
DIFF_CASES_QUICK = 50
DIFF_RE = re.compile(r"^backend_seq: (\d+) random pairs \((\d+) with a backend BN, (\S+) convs\), "
                     r"worst error float (\S+), half (\S+)$", re.M)
CLOSE_RE = re.compile(r"max rel (\S+)")


def parse_diff(stdout):
    """Returns {"cases", "backend_bn", "worst": {"float": e, "half": e}} from the --diff
    summary line of backend_seq, or {}."""
    m = DIFF_RE.search(stdout)
    if not m:
        return {}
    return {"cases": int(m.group(1)), "backend_bn": int(m.group(2)),
            "worst": {"float": float(m.group(4)), "half": float(m.group(5))}}


def close_error(text):
    """Returns the worst relative error close_enough printed, or None."""
    m = CLOSE_RE.search(text or "")
    return float(m.group(1)) if m else None


def error_text(row):
    """Returns the max error cell of a row: `1.2e-06` or `float 1e-07 half 4e-04`."""
    worst = row.get("max_error")
    if isinstance(worst, dict):
        return " ".join("%s %.2g" % (t, worst[t]) for t in TYPES if worst.get(t) is not None)
    return "-" if worst is None else "%.2g" % worst


class BackendChecks:
    """The backend_seq runs of the numerics step (see the module text)."""

    def __init__(self, numerics):
        self.n = numerics
        self.ctx = numerics.ctx
        self.step = numerics.step
        self.prog = numerics.prog("backend_seq")
        self.rows = []

    def record(self, row):
        """Appends a result row to the step's data (saved with the next check)."""
        self.rows.append(row)
        self.step.data["backend"] = self.rows

    def fused_env(self, tag, **extra):
        """Returns (environment, log path) of a fused run with CONVBN_LOG=1."""
        log = "numerics/backend.%s.shim.log" % tag
        return self.n.shim_env("fuse", log, CONVBN_LOG=1, **extra), log

    def shim_row(self, case, res, log):
        """Returns the result row of a fused run: pairs fused, as graphs, graph lines."""
        text = logparse.read(self.ctx.path(log))
        summary = logparse.parse_summary(text)
        graphs = logparse.graph_lines(text)
        return {"case": case, "rc": res.rc, "timed_out": res.timed_out,
                "pairs": summary.get("pairs_seen"), "fused": summary.get("fused"),
                "fused_graph": summary.get("fused_graph", 0 if summary else None),
                "graphs": graphs, "summary": summary, "max_error": None}

    def details(self, row, extra=""):
        """Returns the detail text of a check: extra; the summary; the graph lines."""
        parts = [extra] if extra else []
        parts += [logparse.summary_text(row["summary"]), logparse.graph_text(row["graphs"])]
        return "; ".join(parts)

    def base_run(self, tag, args, out):
        """Runs backend_seq without the shim, writing out; returns the JobResult."""
        return self.ctx.run("backend_seq base " + tag, [self.prog] + args + ["--out", out],
                            self.ctx.c_env("real"), timeout=60,
                            log="numerics/backend.%s.base.log" % tag)

    def compared_case(self, case, tag, args, type_name, pairs, fused, **env_extra):
        """backend_seq ARGS without the shim, then fused expecting PAIRS and FUSED, outputs
        byte-identical when nothing may fuse, else within the type's chained tolerance."""
        base = self.ctx.path("numerics", "backend.%s.base.bin" % tag)
        got = self.ctx.path("numerics", "backend.%s.shim.bin" % tag)
        kind = "exact" if fused == 0 else "close"
        tol = kit.CHAIN_TOLERANCE[type_name]
        cmp_log = "numerics/backend.%s.cmp.log" % tag
        res = self.base_run(tag, args, base)
        if not res.dry and not res.ok:
            self.step.check(case, res.status(), "without the shim: " + res.why())
            return
        env, log = self.fused_env(tag, **env_extra)
        res = self.ctx.run("backend_seq shim " + tag,
                           [self.prog] + args + ["--out", got, "--expect-pairs", str(pairs),
                                                 "--expect-fused", str(fused)],
                           env, timeout=60, log="numerics/backend.%s.shim.out" % tag)
        if res.dry:
            self.n.compare(kind, type_name, tol, got, base, cmp_log)
            return
        row = self.shim_row(case, res, log)
        if not res.ok:
            row["status"] = res.status()
            self.record(row)
            self.step.check(case, res.status(), self.details(row, "fused: " + res.why()))
            return
        ok, detail = self.n.compare(kind, type_name, tol, got, base, cmp_log)
        row["max_error"] = 0.0 if kind == "exact" and ok else close_error(detail)
        row["status"] = "pass" if ok else "fail"
        self.record(row)
        self.step.check(case, row["status"], self.details(row, detail))

    def run_network(self):
        """The 6-pair network per type and layout, fused vs without the shim."""
        configs = [("float", "nchw"), ("half", "nhwc")] if self.ctx.quick else \
            [(t, l) for t in TYPES for l in LAYOUTS]
        for type_name, layout in configs:
            self.compared_case("backend_seq %s %s fused (%d pairs)" % (type_name, layout, NETWORK_PAIRS),
                               "%s.%s" % (type_name, layout),
                               ["--type", type_name, "--layout", layout], type_name,
                               NETWORK_PAIRS, NETWORK_PAIRS)

    def diff_case(self, graph):
        """backend_seq --diff N fused, with the shim's backend graph (graph=True) or with
        CONVBN_BACKEND_GRAPH=0; its own reference check decides, and every pair must fuse.
        Without the graph, no graph may be built and none may fuse as one; with it, each
        geometry must have been built or refused (the graph path was tried)."""
        cases = DIFF_CASES_QUICK if self.ctx.quick else DIFF_CASES
        tag = "diff.graph" if graph else "diff.legacy"
        case = "backend_seq --diff %d fused%s" % (cases, "" if graph else ", CONVBN_BACKEND_GRAPH=0")
        env, log = self.fused_env(tag, **({} if graph else {"CONVBN_BACKEND_GRAPH": 0}))
        res = self.ctx.run("backend_seq " + tag,
                           [self.prog, "--diff", str(cases), "--expect-pairs", str(cases),
                            "--expect-fused", str(cases)],
                           env, timeout=90 if graph else 60, log="numerics/backend.%s.out" % tag)
        if res.dry:
            return
        row = self.shim_row(case, res, log)
        parsed = parse_diff(res.stdout)
        row["max_error"] = parsed.get("worst")
        row["status"], detail = self.judge_diff(res, row, parsed, graph)
        self.record(row)
        self.step.check(case, row["status"], self.details(row, detail))

    @staticmethod
    def judge_diff(res, row, parsed, graph):
        """Returns (status, detail) of a --diff run's row."""
        graphs = row["graphs"]
        if not res.ok:
            return res.status(), res.why()
        if not parsed:
            return "fail", "no --diff summary line on stdout"
        worst = "worst error " + error_text(row)
        if not graph and (graphs["built"] or row.get("fused_graph")):
            return "fail", worst + "; CONVBN_BACKEND_GRAPH=0 but a backend graph was built or used"
        if graph and not (graphs["built"] or graphs["refused"]):
            return "fail", worst + "; no `fused backend graph built|refused` line: the graph path was not tried"
        return "pass", worst

    def run_backend_bn(self):
        """--bn backend fused; --bn-kernel 1 under both flush rules (emulation only)."""
        self.compared_case("backend_seq --bn backend fused (%d pairs)" % NETWORK_PAIRS, "bnbackend",
                           ["--bn", "backend"], "float", NETWORK_PAIRS, NETWORK_PAIRS)
        name = "backend_seq --bn backend --bn-kernel 1, CONVBN_FLUSH precise vs conservative"
        if not self.ctx.emulation:
            if self.ctx.dry_run:
                self.step.note("would record an info check instead of running " + name +
                               ": --bn-kernel 1 needs the emulation (emu_register_kernel)")
            self.step.check(name, "info", "not run on real CUDA: its inverse-std kernel is a host "
                            "function registered with emu_register_kernel (tests/emu/emu_cudart.h), "
                            "an emulation-only API the real runtime lacks, so the program would "
                            "die at that call")
            return
        args = ["--bn", "backend", "--bn-kernel", "1"]
        self.compared_case("backend_seq --bn backend --bn-kernel 1, CONVBN_FLUSH=conservative "
                           "(nothing pairs)", "bnkernel.conservative", args, "float", 0, 0,
                           CONVBN_FLUSH="conservative")
        self.compared_case("backend_seq --bn backend --bn-kernel 1, CONVBN_FLUSH=precise "
                           "(%d fused)" % NETWORK_PAIRS, "bnkernel.precise", args, "float",
                           NETWORK_PAIRS, NETWORK_PAIRS, CONVBN_FLUSH="precise")

    def acceptance_note(self):
        """A note of which types the real engines accepted the shim's graphs for."""
        by_type = {}
        for row in self.rows:
            for type_name, counts in row["graphs"].get("by_type", {}).items():
                total = by_type.setdefault(type_name, {"built": 0, "refused": 0})
                total["built"] += counts["built"]
                total["refused"] += counts["refused"]
        if by_type:
            self.step.note("fused backend graphs over all backend_seq runs: " + ", ".join(
                "%s %d built %d refused" % (t, c["built"], c["refused"]) for t, c in sorted(by_type.items())))

    def run(self):
        """Every backend_seq run of the step."""
        if not os.path.isfile(self.prog) and not self.ctx.dry_run:
            self.step.data["backend_path"] = "not built"
            self.step.check("backend_seq", "error", "not built: run `make e2e-check` before the call")
            return
        self.step.data["backend_path"] = "tested"
        self.run_network()
        self.diff_case(graph=False)
        self.run_backend_bn()
        self.diff_case(graph=True)
        if not self.ctx.dry_run:
            self.acceptance_note()
