"""Turns the results of the GPU validation kit into its report.

Reads WORK/steps/STEP.json (what each step recorded: checks, notes, data) and
WORK/steps/STEP.status.json (what scripts/gpu-check.sh saw: exit status, timeout, time),
and writes
  --md FILE     the Markdown report: environment, one line per step, then each step's
                checks and tables (models, training, discovery, traces, ...)
  --json FILE   the summary: overall status, environment, per-step status and counts,
                every failed check, and the key numbers
A step that wrote nothing, timed out or was skipped is reported as such: the report is
written whatever happened.  The output depends only on the input files.

usage: report.py --work WORK --md FILE --json FILE [--steps a,b,...] [--artifact NAME ...]
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402 - after the path set-up above

STEP_ORDER = ("preflight", "numerics", "conformance", "discovery", "models", "training", "traces")
DETAIL_MAX = 300
SCHEMA = 1


# ---------------------------------------------------------------------------------------
# loading and status

def load_steps(work, wanted):
    """Returns [(name, doc or None, status or None)] for every step that left a file or
    is in wanted, in STEP_ORDER (unknown names last, sorted)."""
    steps_dir = os.path.join(work, "steps")
    names = set(wanted)
    if os.path.isdir(steps_dir):
        for f in os.listdir(steps_dir):
            if f.endswith(".json"):
                names.add(f[:-len(".status.json")] if f.endswith(".status.json") else f[:-len(".json")])
    order = [n for n in STEP_ORDER if n in names] + sorted(names - set(STEP_ORDER))
    return [(n, kit.read_json(os.path.join(steps_dir, n + ".json")),
             kit.read_json(os.path.join(steps_dir, n + ".status.json"))) for n in order]


def step_status(doc, status):
    """Returns the status of a step: skipped, timeout, not run, or the worst of its checks
    (an error when it exited non-zero or recorded no check)."""
    status = status or {}
    if status.get("skipped"):
        return "skipped"
    if status.get("timed_out"):
        return "timeout"
    if doc is None:
        return "error" if status else "not run"
    checks = [c.get("status") for c in doc.get("checks", [])]
    if not checks:
        return "error"
    worst = kit.worst(checks)
    if worst == "pass" and status.get("rc") not in (None, 0):
        return "error"
    return worst


def overall(statuses):
    """Returns pass (every step passed), fail (a step failed) or incomplete."""
    if any(s == "fail" for s in statuses):
        return "fail"
    return "pass" if statuses and all(s == "pass" for s in statuses) else "incomplete"


def check_counts(doc):
    """Returns {status: count} of a step's checks."""
    return dict(collections.Counter(c.get("status") for c in (doc or {}).get("checks", [])))


# ---------------------------------------------------------------------------------------
# formatting helpers

def cell(value, limit=DETAIL_MAX):
    """Returns value as one Markdown table cell: no newlines or bars, at most limit chars."""
    if value is None:
        return "-"
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def table(header, rows):
    """Returns a Markdown table as a list of lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def num(value, fmt="%.3g"):
    """Returns a number formatted with fmt, or "-" for None."""
    return "-" if value is None else fmt % value


def mib(value):
    """Returns bytes as `N MiB`, or "-"."""
    return "-" if value is None else "%.1f MiB" % (value / 2.0 ** 20)


def code_block(text, max_lines=40):
    """Returns the last max_lines of text as a fenced block (lines)."""
    lines = text.rstrip("\n").splitlines()[-max_lines:]
    return ["```"] + lines + ["```"]


# ---------------------------------------------------------------------------------------
# environment

def environment(steps):
    """Returns the environment dict from the preflight step's data ({} when absent)."""
    for name, doc, _ in steps:
        if name == "preflight" and doc:
            return doc.get("data", {})
    return {}


def environment_rows(env):
    """Returns the (key, value) rows of the environment table."""
    gpu, torch_info = env.get("gpu") or {}, env.get("torch") or {}
    libs, source, build = env.get("libs") or {}, env.get("source") or {}, env.get("build") or {}
    card = gpu.get("name") or torch_info.get("device") or gpu.get("error") or "unknown"
    if gpu.get("driver"):
        card += " (driver %s, %s, compute capability %s)" % (gpu.get("driver"), gpu.get("memory"),
                                                             gpu.get("compute_cap"))
    commit = source.get("commit", "unknown")
    if source.get("changed_files") not in (None, "", 0, "0"):
        commit += " (+%s changed files)" % source["changed_files"]
    return [
        ("date", env.get("date", "unknown")),
        ("card", card),
        ("cuDNN", "%s (PyTorch reports %s; headers %s)" % (
            libs.get("cudnn_header_version") or "?", torch_info.get("cudnn"), libs.get("cudnn_headers"))),
        ("cuDNN library", libs.get("cudnn_dir")),
        ("CUDA runtime library", libs.get("cudart_dir")),
        ("PyTorch", "%s (CUDA %s), torchvision %s" % (torch_info.get("torch"), torch_info.get("torch_cuda"),
                                                     torch_info.get("torchvision"))),
        ("Python", torch_info.get("python")),
        ("commit", commit),
        ("build", "built against cuDNN %s headers; CUDA fold kernel embedded: %s; fallback libraries: %s" % (
            build.get("built_against_cudnn"), "yes" if build.get("fold_kernel_embedded") else "no",
            ", ".join(build.get("fallback_libs") or []) or "none")),
        ("libraries", "EMULATION (--emulation: tests the kit, says nothing of real cuDNN)"
         if env.get("emulation") else "real cuDNN and CUDA runtime"),
    ]


# ---------------------------------------------------------------------------------------
# per-step sections

def checks_section(doc):
    """Returns the checks table of a step."""
    rows = [(c.get("name"), c.get("status"), c.get("detail")) for c in doc.get("checks", [])]
    return table(("check", "status", "detail"), rows) if rows else ["No check was recorded."]


def numerics_extra(data):
    """Worst errors of the differential runs; fold backend; backend path."""
    lines = ["", "CUDA fold kernel: fold=%s in the fused runs' summary. Backend path: %s." % (
        data.get("fold_backend") or "?", data.get("backend_path") or "?")]
    rows = []
    for r in data.get("differential", []):
        worst = r.get("worst") or {}
        rows.append((r.get("run"), r.get("cases"), r.get("fused", "-"),
                     num(worst.get("float")), num(worst.get("half")), num(worst.get("bfloat16")),
                     (r.get("summary") or {}).get("fold")))
    if rows:
        lines += ["", "Differential, worst error |z - ref| / max(1, |ref|) per type "
                  "(enforced: float 2e-6, half 4e-3, bfloat16 3e-2):", ""]
        lines += table(("run", "cases", "fused", "float", "half", "bfloat16", "fold"), rows)
    return lines + backend_lines(data.get("backend") or [])


def backend_row(r):
    """Returns the summary-JSON form of one backend_seq row of the numerics step."""
    graphs = r.get("graphs") or {}
    return {"case": r.get("case"), "status": r.get("status"), "pairs_fused": r.get("fused"),
            "fused_as_graphs": r.get("fused_graph"), "graphs_built": graphs.get("built"),
            "graphs_refused": graphs.get("refused"), "graphs_failed": graphs.get("failed"),
            "worst_build_ms": graphs.get("worst_build_ms"),
            "refusal_statuses": graphs.get("statuses") or {}, "max_error": r.get("max_error")}


def error_cell(value):
    """Returns a max-error cell: one number, or `float e half e` for a dict per type."""
    if isinstance(value, dict):
        return " ".join("%s %s" % (t, num(value[t])) for t in sorted(value) if value[t] is not None)
    return num(value)


def backend_lines(rows):
    """The backend_seq table of the numerics step: pairs fused, fused as the shim's own
    backend graphs, graphs built and refused, worst build time, max error; then the
    statuses cuDNN refused graphs with."""
    if not rows:
        return []
    lines = ["", "Backend (graph) API, tests/e2e/backend_seq: pairs fused, fused as the shim's "
             "own backend graph, graphs built and refused by cuDNN, worst build time, max "
             "relative error (against the run without the shim, or --diff's own reference):", ""]
    body, refusals = [], {}
    for r in map(backend_row, rows):
        body.append((r["case"], r["status"], r["pairs_fused"], r["fused_as_graphs"], r["graphs_built"],
                     r["graphs_refused"], num(r["worst_build_ms"], "%.1f"), error_cell(r["max_error"])))
        for status, n in r["refusal_statuses"].items():
            refusals[status] = refusals.get(status, 0) + n
    lines += table(("case", "status", "pairs fused", "as graphs", "graphs built", "graphs refused",
                    "worst build ms", "max error"), body)
    if refusals:
        lines += ["", "Graphs refused or failed, by status: " +
                  ", ".join("%s %d" % kv for kv in sorted(refusals.items())) + "."]
    return lines


def conformance_extra(data):
    """The differences between the emulation and real cuDNN."""
    diffs = data.get("differences", [])
    if not diffs:
        return ["", "No difference between the emulation and real cuDNN."]
    return ["", "Differences (each one a bug in the emulation or in what it assumes of cuDNN):", ""] + \
        ["- " + cell(d, 500) for d in diffs]


def calls_text(calls, top=8):
    """Returns `name xN, ...` for the most frequent calls."""
    items = list(calls.items())[:top]
    more = len(calls) - len(items)
    return ", ".join("%s x%d" % kv for kv in items) + (", +%d more" % more if more > 0 else "")


def discovery_extra(data):
    """Per cuDNN path: the summary, the scenarios' calls, windows and verdicts, and the
    kernels of the pair scenarios."""
    lines = []
    for run in data.get("runs", []):
        summary = run.get("summary") or {}
        env = " ".join("%s=%s" % kv for kv in sorted((run.get("env") or {}).items())) or "no variable"
        lines += ["", "### PyTorch %s cuDNN path (%s)" % (run.get("api"), env), ""]
        if summary:
            lines += ["Shim summary: mode=%s, pairs seen %s, fused %s, not fused %s, flushed by %s." % (
                summary.get("mode"), summary.get("pairs_seen"), summary.get("fused"),
                calls_text(summary.get("not_fused", {})) or "-",
                calls_text(summary.get("flushed_by", {})) or "-"), ""]
        else:
            lines += ["No shim summary in the log (the shim saw no cuDNN call, or the process died).", ""]
        modes = sorted(run.get("by_mode") or {})
        names = []
        for mode in modes:
            names += [n for n in run["by_mode"][mode] if n not in names]
        if names:
            lines += ["Intercepted calls per configuration (all scenarios of each mode):", ""]
            lines += table(["call"] + modes, [[n] + [run["by_mode"][m].get(n, 0) for m in modes]
                                              for n in names])
            lines += [""]
        rows = [(s.get("label"), calls_text(s.get("calls", {})),
                 "%s/%s" % ((s.get("windows") or {}).get("pairs", 0), (s.get("windows") or {}).get("adjacent", 0)),
                 "%s/%s" % ((s.get("launches") or {}).get("shim"), (s.get("launches") or {}).get("profiler")),
                 s.get("error") or s.get("verdict")) for s in run.get("scenarios", [])]
        lines += table(("scenario", "intercepted calls", "conv->BN pairs/adjacent",
                        "launches shim/profiler", "verdict"), rows)
        for s in run.get("scenarios", []):
            name = s.get("scenario", "")
            pair_scenario = name.startswith("conv") and "bn" in name and s.get("mode") == "no_grad"
            if s.get("window_samples") or pair_scenario:
                lines += ["", "- %s: between conv and BN: %s; GPU activity in order: %s" % (
                    s.get("label"),
                    "; ".join(" > ".join(w) for w in s.get("window_samples", [])) or "nothing",
                    cell(" > ".join(s.get("profile_gpu", [])) or "no profile", 1500))]
        for t in run.get("traces", []):
            lines += ["", "Trace %s: ops %s; opaque calls %s." % (t.get("file"), calls_text(t.get("ops", {})),
                                                                 calls_text(t.get("opaque", {})))]
    return lines


def models_extra(data):
    """The models table."""
    rows = []
    for r in data.get("rows", []):
        rows.append((r.get("model"), r.get("config"), r.get("api"), num(r.get("pairs_per_forward"), "%.1f"),
                     num(r.get("fused_per_forward"), "%.1f"), num(r.get("none_ips"), "%.0f"),
                     num(r.get("shim_ips"), "%.0f"), num(r.get("folded_ips"), "%.0f"),
                     num(r.get("shim_speedup"), "%.2f"), num(r.get("folded_speedup"), "%.2f"),
                     num(r.get("shim_max_rel")), num(r.get("folded_max_rel"))))
    if not rows:
        return []
    head = "Batch %s, median of %s iterations after %s warm-up, images/s; error = max |out - ref| / " \
           "max(1, |ref|) against no shim (tolerance %s)." % (
               data.get("batch"), data.get("iters"), data.get("warmup"),
               ", ".join("%s %g" % kv for kv in sorted((data.get("tolerance") or {}).items())))
    return ["", head, ""] + table(("model", "config", "path", "pairs/fwd", "fused/fwd", "none", "shim",
                                   "folded", "shim x", "folded x", "shim err", "folded err"), rows)


def training_extra(data):
    """The training table."""
    rows = []
    for r in data.get("runs", []):
        sv, rv = r.get("shim_vs_base") or {}, r.get("repeat_vs_base") or {}
        mem = r.get("max_memory_allocated") or {}
        losses = (r.get("losses") or {}).get("base") or []
        rows.append((r.get("api"), sv.get("bit_identical"), rv.get("bit_identical"),
                     " ".join("%.6g" % l for l in losses), mib(r.get("kept_for_gradients_bytes")),
                     "%s / %s" % (mib(mem.get("base")), mib(mem.get("shim"))),
                     num((sv.get("validation") or {}).get("max_rel"))))
    if not rows:
        return []
    return ["", "%s, %s steps, batch %s, %spx; conv outputs kept for gradients = what a framework-level "
            "Tune mode would free (the shim cannot)." % (data.get("model"), data.get("steps"),
                                                         data.get("batch"), data.get("size")), ""] + \
        table(("path", "bit-identical with shim", "baseline repeatable", "losses (no shim)",
               "kept for gradients (5 steps)", "max_memory_allocated base / shim", "validation err"), rows)


def traces_extra(data):
    """Recorded traces and the bench's output."""
    lines = []
    rows = [(t.get("file"), t.get("ops"), t.get("conv_fwd"), t.get("bn_inference"), t.get("opaque"),
             t.get("bytes")) for t in data.get("recorded", [])]
    if rows:
        lines += ["", "Recorded at batch %s (OUT/%s; unpack into bench/traces/recorded/):" % (
            data.get("batch"), (data.get("tarball") or {}).get("file", "traces-recorded.tar.gz")), ""]
        lines += table(("trace", "ops", "conv", "BN inference", "opaque", "bytes"), rows)
    for label, b in sorted((data.get("bench") or {}).items()):
        timed_out = ", timed out" if b.get("timed_out") else ""
        lines += ["", "convbn-bench %s (exit %s%s):" % (label, b.get("rc"), timed_out), ""]
        lines += code_block(b.get("stdout", ""))
    return lines


EXTRAS = {"numerics": numerics_extra, "conformance": conformance_extra, "discovery": discovery_extra,
          "models": models_extra, "training": training_extra, "traces": traces_extra}


def step_section(name, doc, status, state):
    """Returns the lines of one step's section."""
    title = (doc or {}).get("title") or name
    lines = ["", "## %s: %s" % (name, title), "", "Status: **%s**%s." % (state, status_note(status))]
    if doc is None:
        if state != "skipped":
            lines += ["", "The step wrote no result; see logs/%s.log in gpu-logs.tar.gz." % name]
        return lines
    lines += [""] + checks_section(doc)
    try:
        lines += EXTRAS.get(name, lambda data: [])(doc.get("data") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        lines += ["", "(step data could not be rendered: %s: %s)" % (type(exc).__name__, exc)]
    if doc.get("notes"):
        lines += [""] + ["- " + cell(n, 1000) for n in doc["notes"]]
    return lines


def status_note(status):
    """Returns `, 12.3 s of 90 s` / `: skipped (why)` for a status file."""
    if not status:
        return ""
    if status.get("skipped"):
        return " (%s)" % status["skipped"]
    note = ", %.1f s of %s s" % (status.get("duration_s") or 0, status.get("limit_s", "?"))
    if status.get("timed_out"):
        note += ", killed at its time limit"
    elif status.get("rc") not in (None, 0):
        note += ", exit status %s" % status["rc"]
    return note


# ---------------------------------------------------------------------------------------
# summary JSON

def highlights(steps):
    """Returns the key numbers of the run for the summary JSON."""
    data = {name: (doc or {}).get("data") or {} for name, doc, _ in steps}
    out = {}
    if "numerics" in data:
        out["fold_backend"] = data["numerics"].get("fold_backend")
        out["backend_path"] = data["numerics"].get("backend_path")
        out["numerics"] = {"backend_graphs": [backend_row(r) for r in data["numerics"].get("backend") or []]}
    if "conformance" in data:
        out["differences"] = data["conformance"].get("differences", [])
    if "models" in data:
        keys = ("model", "config", "api", "pairs_per_forward", "fused_per_forward", "none_ips",
                "shim_ips", "folded_ips", "shim_max_rel", "folded_max_rel")
        out["models"] = [{k: r.get(k) for k in keys} for r in data["models"].get("rows", [])]
    if "training" in data:
        out["training"] = [{"api": r.get("api"),
                            "bit_identical": (r.get("shim_vs_base") or {}).get("bit_identical"),
                            "kept_for_gradients_bytes": r.get("kept_for_gradients_bytes"),
                            "max_memory_allocated": r.get("max_memory_allocated")}
                           for r in data["training"].get("runs", [])]
    if "traces" in data:
        out["recorded_traces"] = [t.get("file") for t in data["traces"].get("recorded", [])]
    return out


def summary(steps, states, env, artifacts):
    """Returns the summary JSON document."""
    failures = []
    for name, doc, _ in steps:
        for c in (doc or {}).get("checks", []):
            if c.get("status") in ("fail", "error", "timeout"):
                failures.append({"step": name, "check": c.get("name"), "status": c.get("status"),
                                 "detail": c.get("detail")})
    return {
        "schema": SCHEMA,
        "overall": overall(list(states.values())),
        "environment": {k: v for k, v in environment_rows(env)},
        "steps": {name: {"status": states[name], "checks": check_counts(doc),
                         "duration_s": (status or {}).get("duration_s"),
                         "limit_s": (status or {}).get("limit_s")}
                  for name, doc, status in steps},
        "failures": failures,
        "highlights": highlights(steps),
        "artifacts": artifacts,
    }


# ---------------------------------------------------------------------------------------
# the report

def markdown(steps, states, env, artifacts):
    """Returns the Markdown report text."""
    verdict = overall(list(states.values()))
    lines = ["# convbn-shim GPU validation report", ""]
    lines += table(("item", "value"), environment_rows(env))
    lines += ["", "Overall: **%s**." % verdict.upper(), ""]
    rows = []
    for name, doc, status in steps:
        counts = check_counts(doc)
        rows.append((name, states[name], num((status or {}).get("duration_s"), "%.1f s"),
                     ", ".join("%s %d" % (k, counts[k]) for k in kit.STATUSES if k in counts) or "-"))
    lines += table(("step", "status", "time", "checks"), rows)
    if artifacts:
        lines += ["", "Files: " + ", ".join(artifacts) + "."]
    for name, doc, status in steps:
        lines += step_section(name, doc, status, states[name])
    return "\n".join(lines) + "\n"


def build(work, wanted, artifacts):
    """Returns (markdown text, summary dict) for the results under work."""
    steps = load_steps(work, wanted)
    states = {name: step_status(doc, status) for name, doc, status in steps}
    env = environment(steps)
    return markdown(steps, states, env, artifacts), summary(steps, states, env, artifacts)


def main(argv=None):
    """Writes the report and the summary; returns 0 (1 when the inputs are unusable)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--md", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--steps", default="", help="steps that were asked for (comma-separated)")
    parser.add_argument("--artifact", action="append", default=[], help="a file name that comes back")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.work):
        print("report: no work directory %s" % args.work, file=sys.stderr)
        return 1
    text, doc = build(args.work, [s for s in args.steps.split(",") if s], args.artifact)
    with open(args.md, "w", encoding="utf-8") as f:
        f.write(text)
    kit.write_json(args.json, doc)
    print("report: %s (%s), %s" % (args.md, doc["overall"], args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
