"""Tests of the GPU kit's result parsing, run without a GPU (make gpu-kit-check).

- scripts/gpu/report.py on the recorded sample (tests/gpu/sample/work) must write exactly
  tests/gpu/sample/expected/gpu-report.md and gpu-results.json;
- step and overall status rules: timed out, skipped, missing result, failed check;
- scripts/gpu/logparse.py on tests/gpu/sample/shim.log: regions, calls between each conv and
  its BN, the exit summary; on tests/gpu/sample/shim-backend.log: the shim's fused backend
  graphs built, refused and failed, their build times, `pairs fused as backend graphs`;
- the parsers of the step modules (differential's and backend_seq --diff's summary lines,
  close_enough's line, the --diff verdicts; the models table).

GPU_KIT_UPDATE_EXPECTED=1 rewrites the expected files instead of comparing (review the diff).
Only the standard library and the kit's own stdlib-only modules are imported: nothing here
needs PyTorch or a GPU.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SAMPLE = os.path.join(HERE, "sample")
sys.path.insert(0, os.path.join(REPO, "scripts", "gpu"))

import logparse  # noqa: E402
import models  # noqa: E402
import numerics  # noqa: E402
import numerics_backend  # noqa: E402
import report  # noqa: E402

ARTIFACTS = ["gpu-report.md", "gpu-results.json", "gpu-logs.tar.gz", "gpu-check.log",
             "traces-recorded.tar.gz"]


def write_status(work, step, **fields):
    """Writes WORK/steps/STEP.status.json with fields."""
    os.makedirs(os.path.join(work, "steps"), exist_ok=True)
    doc = {"step": step, "rc": 0, "timed_out": False, "limit_s": 60, "duration_s": 1.0, "skipped": None}
    doc.update(fields)
    with open(os.path.join(work, "steps", step + ".status.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f)


def write_step(work, step, statuses):
    """Writes WORK/steps/STEP.json with one check per status."""
    os.makedirs(os.path.join(work, "steps"), exist_ok=True)
    doc = {"step": step, "title": step, "notes": [], "data": {},
           "checks": [{"name": "check %d" % i, "status": s, "detail": ""} for i, s in enumerate(statuses)]}
    with open(os.path.join(work, "steps", step + ".json"), "w", encoding="utf-8") as f:
        json.dump(doc, f)


class SampleReport(unittest.TestCase):
    """report.py on the recorded sample."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_report(self, work, steps="preflight,numerics,conformance,discovery,models,training,traces"):
        """Runs report.main; returns (markdown, summary dict)."""
        md, js = os.path.join(self.tmp, "gpu-report.md"), os.path.join(self.tmp, "gpu-results.json")
        argv = ["--work", work, "--md", md, "--json", js, "--steps", steps]
        for a in ARTIFACTS:
            argv += ["--artifact", a]
        self.assertEqual(report.main(argv), 0)
        with open(md, encoding="utf-8") as f:
            text = f.read()
        with open(js, encoding="utf-8") as f:
            return text, json.load(f)

    def test_matches_expected(self):
        """The report and the summary of the sample are exactly the expected files."""
        text, doc = self.run_report(os.path.join(SAMPLE, "work"))
        expected_dir = os.path.join(SAMPLE, "expected")
        produced = {"gpu-report.md": text,
                    "gpu-results.json": json.dumps(doc, indent=1, sort_keys=True) + "\n"}
        if os.environ.get("GPU_KIT_UPDATE_EXPECTED") == "1":
            os.makedirs(expected_dir, exist_ok=True)
            for name, content in produced.items():
                with open(os.path.join(expected_dir, name), "w", encoding="utf-8") as f:
                    f.write(content)
            self.skipTest("expected files rewritten")
        for name, content in produced.items():
            with open(os.path.join(expected_dir, name), encoding="utf-8") as f:
                self.assertEqual(content, f.read(), "%s differs from tests/gpu/sample/expected/%s" % (name, name))

    def test_sample_statuses(self):
        """The sample's statuses: conformance and models fail, traces timed out, overall fail."""
        _, doc = self.run_report(os.path.join(SAMPLE, "work"))
        states = {k: v["status"] for k, v in doc["steps"].items()}
        self.assertEqual(states, {"preflight": "pass", "numerics": "pass", "conformance": "fail",
                                  "discovery": "pass", "models": "fail", "training": "pass",
                                  "traces": "timeout"})
        self.assertEqual(doc["overall"], "fail")
        self.assertEqual([f["step"] for f in doc["failures"]], ["conformance", "models"])
        self.assertEqual(doc["highlights"]["fold_backend"], "cuda")
        self.assertEqual(doc["highlights"]["backend_path"], "tested")
        graphs = doc["highlights"]["numerics"]["backend_graphs"]
        self.assertEqual([(g["graphs_built"], g["graphs_refused"], g["fused_as_graphs"]) for g in graphs],
                         [(2, 2, 1), (4, 0, 6), (0, 0, 0), (0, 4, 0), (117, 83, 117)])
        self.assertEqual(graphs[0]["worst_build_ms"], 412.7)
        self.assertEqual(graphs[4]["max_error"], {"float": 1.4e-07, "half": 0.00061})

    def test_sample_sections(self):
        """Every section and table of the sample is in the report."""
        text, _ = self.run_report(os.path.join(SAMPLE, "work"))
        for needle in ("| card | SAMPLE CARD (driver 000.00, 1000 MiB, compute capability 9.0) |",
                       "Overall: **FAIL**.",
                       "## traces: Recorded traces of the models, replayed by convbn-bench",
                       "Status: **timeout**, 90.0 s of 90 s, killed at its time limit.",
                       "| resnet18 | fp32-nchw | legacy | 20.0 | 20.0 | 1000 | 1100 | 1200 | 1.10 | 1.20 | 2e-06 | 4e-06 |",
                       "### PyTorch legacy cuDNN path (TORCH_CUDNN_V8_API_DISABLED=1)",
                       "sample_conv_kernel > sample_inv_std_kernel > sample_bn_kernel",
                       "Differences (each one a bug in the emulation",
                       "| legacy | True | True | 6.9 6.8 6.7 6.6 6.5 | 100.0 MiB |",
                       "CUDA fold kernel: fold=cuda",
                       "| backend_seq float nchw fused (6 pairs) | pass | 6 | 1 | 2 | 2 | 412.7 | 3.1e-07 |",
                       "| backend_seq --diff 200 fused | pass | 200 | 117 | 117 | 83 | 933.7 | float 1.4e-07 half 0.00061 |",
                       "Graphs refused or failed, by status: CUDNN_STATUS_EXECUTION_FAILED (5003) 1, "
                       "CUDNN_STATUS_NOT_SUPPORTED (3000) 89."):
            self.assertIn(needle, text)

    def test_missing_and_partial_steps(self):
        """A step asked for but never started is `not run`; one with a status file but no
        result is an error; a skipped one is skipped; the overall result is incomplete."""
        work = os.path.join(self.tmp, "work")
        write_status(work, "preflight")
        write_step(work, "preflight", ["pass", "info"])
        write_status(work, "numerics", rc=2)
        write_status(work, "models", rc=None, skipped="not run: the budget of 540 s was spent")
        text, doc = self.run_report(work, "preflight,numerics,models,training")
        states = {k: v["status"] for k, v in doc["steps"].items()}
        self.assertEqual(states, {"preflight": "pass", "numerics": "error", "models": "skipped",
                                  "training": "not run"})
        self.assertEqual(doc["overall"], "incomplete")
        self.assertIn("The step wrote no result; see logs/numerics.log", text)
        self.assertIn("Status: **skipped** (not run: the budget of 540 s was spent).", text)

    def test_status_rules(self):
        """The worst check decides; info and skipped never fail a step; a non-zero exit
        with only passing checks is an error; no check at all is an error."""
        cases = [(["pass", "info", "skipped"], 0, "pass"), (["pass", "fail", "error"], 0, "fail"),
                 (["pass", "error"], 0, "error"), (["timeout", "pass"], 0, "timeout"),
                 (["pass"], 2, "error"), ([], 0, "error")]
        for checks, rc, want in cases:
            doc = {"checks": [{"status": s} for s in checks]}
            self.assertEqual(report.step_status(doc, {"rc": rc}), want, (checks, rc))
        self.assertEqual(report.step_status(None, None), "not run")
        self.assertEqual(report.step_status({"checks": [{"status": "pass"}]}, {"timed_out": True}), "timeout")
        self.assertEqual(report.overall(["pass", "pass"]), "pass")
        self.assertEqual(report.overall(["pass", "timeout"]), "incomplete")
        self.assertEqual(report.overall(["error", "fail"]), "fail")
        self.assertEqual(report.overall([]), "incomplete")

    def test_cells_are_safe(self):
        """Table cells lose newlines and bars and are shortened."""
        self.assertEqual(report.cell("a|b\nc"), "a\\|b c")
        self.assertEqual(len(report.cell("x" * 1000)), report.DETAIL_MAX)
        self.assertEqual(report.cell(None), "-")


class LogParsing(unittest.TestCase):
    """logparse.py on the sample shim log."""

    @classmethod
    def setUpClass(cls):
        cls.text = logparse.read(os.path.join(SAMPLE, "shim.log"))

    def test_regions(self):
        """Calls are split by the kit's markers; the rest is `(outside)`."""
        regions = logparse.split_regions(self.text)
        self.assertEqual(list(regions), ["(outside)", "warmup.conv_bn.fp32-nchw.no_grad",
                                         "conv_bn.fp32-nchw.no_grad", "conv_bias_bn.fp32-nchw.no_grad"])
        self.assertEqual(logparse.count_calls(regions["(outside)"]),
                         {"cudaFree": 1, "cudaMemcpy": 1, "cudnnCreate": 1, "cudnnDestroy": 1})
        self.assertEqual(logparse.count_calls(regions["conv_bn.fp32-nchw.no_grad"]),
                         {"cudnnBatchNormalizationForwardInference": 2, "cudnnConvolutionForward": 2})

    def test_windows(self):
        """What sits between each conv and its BN, other streams marked; a conv followed by
        another conv opens no window of its own."""
        regions = logparse.split_regions(self.text)
        adjacent = logparse.conv_bn_windows(regions["conv_bn.fp32-nchw.no_grad"])
        self.assertEqual([w["between"] for w in adjacent], [[], []])
        windows = logparse.conv_bn_windows(regions["conv_bias_bn.fp32-nchw.no_grad"])
        self.assertEqual([w["between"] for w in windows], [["cudaLaunchKernel", "cudaMemcpyAsync@0x77"], []])
        self.assertEqual(logparse.summarise_windows(windows),
                         {"pairs": 2, "adjacent": 1, "between": {"cudaLaunchKernel": 1, "cudaMemcpyAsync@0x77": 1}})

    def test_summary(self):
        """Every number and list of the exit summary."""
        s = logparse.parse_summary(self.text)
        self.assertEqual(s, {"mode": "fuse", "flush": "conservative", "fold": "host", "pairs_seen": 2,
                             "distinct_signatures": 1, "fusable": 2, "fused": 2,
                             "not_fused": {"grad-mode": 3}, "flushed_by": {"cudaLaunchKernel": 1},
                             "bytes_not_moved": 9216, "kept_for_gradients_bytes": 1802240,
                             "device_high_water_bytes": 3145728})
        self.assertEqual(logparse.parse_summary("no summary here"), {})

    def test_backend_graph_lines(self):
        """The shim's fused backend graph lines: built (with build time and workspace),
        refused and failed at execution (with cuDNN's status), per type; the summary's
        `pairs fused as backend graphs`; a log without them."""
        text = logparse.read(os.path.join(SAMPLE, "shim-backend.log"))
        g = logparse.graph_lines(text)
        self.assertEqual((g["built"], g["refused"], g["failed"]), (2, 2, 1))
        self.assertEqual((g["build_ms"], g["worst_build_ms"], g["total_build_ms"]), ([412.7, 97.3], 412.7, 510.0))
        self.assertEqual(g["workspace_max"], 4096)
        self.assertEqual(g["by_type"], {"float": {"built": 2, "refused": 2}})
        self.assertEqual(g["statuses"], {"CUDNN_STATUS_NOT_SUPPORTED (3000)": 2,
                                         "CUDNN_STATUS_EXECUTION_FAILED (5003)": 1})
        self.assertEqual(logparse.graph_text(g), "graphs built 2, refused 2, failed at execution 1, worst build "
                         "412.7 ms, CUDNN_STATUS_EXECUTION_FAILED (5003) 1, CUDNN_STATUS_NOT_SUPPORTED (3000) 2")
        s = logparse.parse_summary(text)
        self.assertEqual((s["fused"], s["fused_graph"], s["fold"]), (6, 1, "cuda"))
        self.assertIn("as backend graphs 1", logparse.summary_text(s))
        self.assertNotIn("fused_graph", logparse.parse_summary(self.text))
        self.assertEqual(logparse.graph_lines(self.text)["worst_build_ms"], None)
        self.assertEqual(logparse.graph_text(logparse.graph_lines("")), "graphs built 0, refused 0")

    def test_backend_sample_row(self):
        """The sample's float nchw backend row holds what the parser reads from
        shim-backend.log (the sample and the parser cannot drift apart)."""
        with open(os.path.join(SAMPLE, "work", "steps", "numerics.json"), encoding="utf-8") as f:
            row = json.load(f)["data"]["backend"][0]
        text = logparse.read(os.path.join(SAMPLE, "shim-backend.log"))
        self.assertEqual(row["graphs"], logparse.graph_lines(text))
        self.assertEqual(row["summary"], logparse.parse_summary(text))

    def test_pair_lines(self):
        """The pair line's API, conv kind, outcome and call site."""
        self.assertEqual(logparse.pair_lines(self.text),
                         [{"id": 1, "api": "legacy", "conv": "forward", "outcome": "fused",
                           "site": "bn+0x4f (hazards)"}])


class StepParsers(unittest.TestCase):
    """Parsers of the step modules."""

    def test_differential_line(self):
        """differential's summary line, with and without the shim."""
        out = ("differential: 600 cases, 598 fused, worst error per type float 3.06e-07 (tolerance 2e-06, "
               "221 cases) half 0.001 (tolerance 0.004, 202 cases) bfloat16 0.00758 (tolerance 0.03, 177 cases)\n"
               "differential: coverage (cases): 3-d 193\n")
        p = numerics.parse_differential(out)
        self.assertEqual((p["cases"], p["fused"]), (600, 598))
        self.assertEqual(p["worst"], {"float": 3.06e-07, "half": 0.001, "bfloat16": 0.00758})
        self.assertEqual(p["tolerance"]["bfloat16"], 0.03)
        p = numerics.parse_differential(out.replace("598 fused", "without the shim"))
        self.assertIsNone(p["fused"])
        self.assertEqual(numerics.parse_differential("garbage"), {})

    def test_backend_diff_line(self):
        """backend_seq --diff's summary line and close_enough's line."""
        out = ("backend_seq: 200 random pairs (97 with a backend BN, backend convs), worst error float "
               "1.44e-07, half 0.000539\n")
        self.assertEqual(numerics_backend.parse_diff(out),
                         {"cases": 200, "backend_bn": 97, "worst": {"float": 1.44e-07, "half": 0.000539}})
        self.assertEqual(numerics_backend.parse_diff("garbage"), {})
        self.assertEqual(numerics_backend.close_error(
            "close_enough: 36864 half values, max abs 0.000977, max rel 0.000977 (tolerance 0.005)"), 0.000977)
        self.assertIsNone(numerics_backend.close_error("exit 1"))

    def test_backend_diff_verdicts(self):
        """A --diff run passes on exit 0 with its summary line; with the graph it must have
        built or refused one, without it (CONVBN_BACKEND_GRAPH=0) it must have built none."""
        import kit
        ok, bad = kit.JobResult(0), kit.JobResult(1, stderr="backend_seq: case 3 out of tolerance")
        parsed = {"cases": 2, "worst": {"float": 1e-7, "half": 1e-4}}
        def row(built, refused, fused_graph):
            return {"graphs": {"built": built, "refused": refused}, "fused_graph": fused_graph,
                    "max_error": parsed["worst"]}
        judge = numerics_backend.BackendChecks.judge_diff
        self.assertEqual(judge(ok, row(1, 1, 1), parsed, True)[0], "pass")
        self.assertEqual(judge(ok, row(0, 2, 0), parsed, True)[0], "pass")
        self.assertEqual(judge(ok, row(0, 0, 0), parsed, True)[0], "fail")
        self.assertEqual(judge(ok, row(0, 0, 0), parsed, False)[0], "pass")
        self.assertEqual(judge(ok, row(1, 0, 0), parsed, False)[0], "fail")
        self.assertEqual(judge(ok, row(1, 0, 1), {}, True), ("fail", "no --diff summary line on stdout"))
        self.assertEqual(judge(bad, row(1, 0, 1), parsed, True)[0], "fail")

    def test_unknown_hazard_modes(self):
        """A hazards scenario the kit's table lacks runs in the mode `--list` names."""
        self.assertEqual(numerics.unknown_case("new", "fuse or auto"), ("new", "close", "fuse", None, ()))
        self.assertEqual(numerics.unknown_case("new", "auto, grad mode on"), ("new", "close", "auto", "1", ()))
        self.assertEqual(numerics.unknown_case("new", "auto"), ("new", "close", "auto", "0", ()))

    def test_models_rows(self):
        """Rows of the three variants combine into one report row; nothing fused but
        different outputs fails (invariant 1); an error above tolerance fails."""
        rows = [{"kind": "versions"},
                {"kind": "row", "api": "legacy", "model": "m", "config": "fp32-nchw", "variant": "none",
                 "images_per_s": 100.0, "bn_modules": 3},
                {"kind": "row", "api": "legacy", "model": "m", "config": "fp32-nchw", "variant": "shim",
                 "images_per_s": 120.0, "pairs_per_forward": 3.0, "fused_per_forward": 3.0,
                 "vs_none": {"max_rel": 1e-6, "max_abs": 2e-6}},
                {"kind": "row", "api": "legacy", "model": "m", "config": "fp32-nchw", "variant": "folded",
                 "images_per_s": 130.0, "bn_modules": 0, "vs_none": {"max_rel": 3e-6}},
                {"kind": "error", "api": "legacy", "model": "bad", "error": "boom"}]
        table, failures = models.combine(rows)
        self.assertEqual([f["model"] for f in failures], ["bad"])
        row = models.summary_row("legacy", "m", "fp32-nchw", table[("legacy", "m", "fp32-nchw")])
        self.assertEqual((row["shim_speedup"], row["folded_speedup"], row["bn_after_fold"]), (1.2, 1.3, 0))
        self.assertEqual(models.judge(row)[0], "pass")
        row.update(fused_per_forward=0.0)
        self.assertEqual(models.judge(row)[0], "fail")
        row.update(fused_per_forward=3.0, shim_max_rel=0.1)
        self.assertEqual(models.judge(row)[0], "fail")


if __name__ == "__main__":
    unittest.main(verbosity=1)
