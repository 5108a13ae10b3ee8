"""Parsing of the shim's log (CONVBN_LOG_FILE) for the GPU validation kit.

Reads four kinds of line:
  convbn: call NAME stream=0x...        one per intercepted call (CONVBN_LOG=2)
  convbn: fused backend graph built|refused|failed ...
                                        the shim's own fused backend graphs (CONVBN_LOG=1):
                                        one line per geometry built or refused, and one
                                        per graph whose execution failed
  convbn: summary: ... and the lines after it     the exit summary (CONVBN_STATS=1)
  convbn-kit: begin NAME / end NAME     markers the kit's PyTorch driver appends to the same
                                        file around each scenario (the shim opens it with
                                        O_APPEND, so the order is the order of the calls)
and turns them into per-scenario call counts, the calls that sit between each convolution
and the BatchNorm after it, and the summary's numbers.  Standard library only.
"""

import collections
import re

CALL_RE = re.compile(r"^convbn: call (\S+) stream=(\S+)")
MARK_RE = re.compile(r"^convbn-kit: (begin|end) (\S+)")
PAIR_RE = re.compile(r"^convbn: pair #(\d+) api=(\S+) conv=(\S+) .* -> (\S+) at (.*)$")
GRAPH_BUILT_RE = re.compile(r"^convbn: fused backend graph built for x=(\S+) w=(\S+) type=(\S+) "
                            r"in ([0-9.]+) ms \(workspace (\d+) bytes\)")
GRAPH_REFUSED_RE = re.compile(r"^convbn: fused backend graph refused for x=(\S+) w=(\S+) "
                              r"type=(\S+): status (-?\d+) \(([^)]*)\)")
GRAPH_FAILED_RE = re.compile(r"^convbn: fused backend graph failed: status (-?\d+) \(([^)]*)\)")

# Calls that start a convolution, and calls that run an inference-mode BatchNorm.
CONV_CALLS = ("cudnnConvolutionForward", "cudnnConvolutionBiasActivationForward",
              "cudnnBackendExecute")
BN_CALLS = ("cudnnBatchNormalizationForwardInference", "cudnnNormalizationForwardInference",
            "cudnnBatchNormalizationForwardTrainingEx", "cudnnBatchNormalizationForwardTraining")

SUMMARY_NUMBERS = (
    ("fused_graph", r"pairs fused as backend graphs\s+(\d+)"),
    ("pairs_seen", r"pairs seen\s+(\d+)"),
    ("distinct_signatures", r"distinct signatures\s+(\d+)"),
    ("fusable", r"fusable\s+(\d+)"),
    ("fused", r"fused\s+(\d+)$"),
    ("bytes_not_moved", r"activation bytes not moved\s+(\d+)"),
    ("bytes_saveable", r"activation bytes a fusion would save (\d+)"),
    ("kept_for_gradients_bytes", r"conv outputs kept for gradients (\d+) bytes"),
    ("device_high_water_bytes", r"shim device memory high-water (\d+) bytes"),
    ("verified_pairs", r"verified pairs\s+(\d+)"),
)


def lines_of(text):
    """Returns the lines of a log text without trailing whitespace."""
    return [line.rstrip() for line in text.splitlines()]


def split_regions(text):
    """Returns an ordered {region: [(call, stream), ...]} of the intercepted calls between
    each `convbn-kit: begin R` and `end R`; calls outside any region go to "(outside)"."""
    regions = collections.OrderedDict()
    current = "(outside)"
    for line in lines_of(text):
        mark = MARK_RE.match(line)
        if mark:
            current = mark.group(2) if mark.group(1) == "begin" else "(outside)"
            regions.setdefault(current, [])
            continue
        call = CALL_RE.match(line)
        if call:
            regions.setdefault(current, []).append((call.group(1), call.group(2)))
    return regions


def count_calls(calls):
    """Returns {call name: count} of a list of (call, stream), most frequent first."""
    counts = collections.Counter(name for name, _ in calls)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def conv_bn_windows(calls):
    """Returns one entry per convolution followed by an inference BN on the same stream:
    {"conv", "bn", "stream", "between": [calls in between, `name@stream` when on another
    stream]}.  A convolution that meets another convolution first on its stream opens no
    window (its successor does)."""
    windows, open_conv = [], {}
    for name, stream in calls:
        if name in BN_CALLS and stream in open_conv:
            conv, between = open_conv.pop(stream)
            windows.append({"conv": conv, "bn": name, "stream": stream, "between": between})
            continue
        for other, (_, between) in open_conv.items():
            between.append(name if other == stream else "%s@%s" % (name, stream))
        if name in CONV_CALLS:
            open_conv[stream] = (name, [])
    return windows


def summarise_windows(windows):
    """Returns {"pairs": n, "adjacent": n with nothing in between, "between": {call: n}}."""
    between = collections.Counter()
    for w in windows:
        between.update(w["between"])
    return {"pairs": len(windows),
            "adjacent": sum(1 for w in windows if not w["between"]),
            "between": dict(sorted(between.items(), key=lambda kv: (-kv[1], kv[0])))}


def parse_summary(text):
    """Returns the last exit summary in text as a dict: mode, flush, fold, the numbers of
    SUMMARY_NUMBERS, "not_fused" {reason: n}, "flushed_by" {call: n}; {} when none."""
    lines = lines_of(text)
    starts = [i for i, line in enumerate(lines) if line.startswith("convbn: summary:")]
    if not starts:
        return {}
    head = lines[starts[-1]]
    summary = dict(re.findall(r"(mode|flush|fold)=(\S+)", head))
    summary["not_fused"], summary["flushed_by"] = {}, {}
    for line in lines[starts[-1] + 1:]:
        if not line.startswith("convbn:   "):
            break
        body = line[len("convbn:   "):].strip()
        reason = re.match(r"not fused: (\S+)\s+(\d+)$", body)
        flush = re.match(r"flushed by (\S+)\s+(\d+)$", body)
        if reason:
            summary["not_fused"][reason.group(1)] = int(reason.group(2))
        elif flush:
            summary["flushed_by"][flush.group(1)] = int(flush.group(2))
        else:
            for key, pattern in SUMMARY_NUMBERS:
                m = re.match(pattern, body)
                if m:
                    summary[key] = int(m.group(1))
                    break
    return summary


def pair_lines(text):
    """Returns the `pair #N` lines (CONVBN_LOG >= 1) as dicts: id, api, conv, outcome, site."""
    pairs = []
    for line in lines_of(text):
        m = PAIR_RE.match(line)
        if m:
            pairs.append({"id": int(m.group(1)), "api": m.group(2), "conv": m.group(3),
                          "outcome": m.group(4), "site": m.group(5)})
    return pairs


def graph_lines(text):
    """Returns what the fused-backend-graph lines of a CONVBN_LOG >= 1 log say: "built",
    "refused", "failed" (counts), "build_ms" (the build times, in order), "worst_build_ms"
    and "total_build_ms" (None when nothing was built), "workspace_max" (bytes), "by_type"
    {type: {"built": n, "refused": n}} and "statuses" {"NAME (N)": count} of the refusals
    and failures."""
    out = {"built": 0, "refused": 0, "failed": 0, "build_ms": [], "workspace_max": 0,
           "by_type": {}, "statuses": {}}
    for line in lines_of(text):
        built, refused = GRAPH_BUILT_RE.match(line), GRAPH_REFUSED_RE.match(line)
        failed = GRAPH_FAILED_RE.match(line)
        if built:
            out["built"] += 1
            out["build_ms"].append(float(built.group(4)))
            out["workspace_max"] = max(out["workspace_max"], int(built.group(5)))
            per_type = out["by_type"].setdefault(built.group(3), {"built": 0, "refused": 0})
            per_type["built"] += 1
        elif refused or failed:
            m = refused or failed
            out["refused" if refused else "failed"] += 1
            status = "%s (%s)" % (m.group(5 if refused else 2), m.group(4 if refused else 1))
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            if refused:
                per_type = out["by_type"].setdefault(refused.group(3), {"built": 0, "refused": 0})
                per_type["refused"] += 1
    out["worst_build_ms"] = max(out["build_ms"]) if out["build_ms"] else None
    out["total_build_ms"] = round(sum(out["build_ms"]), 3) if out["build_ms"] else None
    return out


def graph_text(graphs):
    """Returns a one-line rendering of graph_lines' result for check details."""
    parts = ["graphs built %d" % graphs.get("built", 0), "refused %d" % graphs.get("refused", 0)]
    if graphs.get("failed"):
        parts.append("failed at execution %d" % graphs["failed"])
    if graphs.get("worst_build_ms") is not None:
        parts.append("worst build %.1f ms" % graphs["worst_build_ms"])
    parts += ["%s %d" % kv for kv in sorted(graphs.get("statuses", {}).items())]
    return ", ".join(parts)


def summary_text(summary):
    """Returns a one-line rendering of parse_summary's result for check details."""
    if not summary:
        return "no summary in the log"
    parts = ["fold=%s" % summary.get("fold", "?"),
             "pairs %s" % summary.get("pairs_seen", 0),
             "fused %s" % summary.get("fused", 0)]
    if "fused_graph" in summary:
        parts.append("as backend graphs %d" % summary["fused_graph"])
    parts += ["not fused %s %d" % kv for kv in sorted(summary.get("not_fused", {}).items())]
    parts += ["flushed by %s %d" % kv for kv in sorted(summary.get("flushed_by", {}).items())]
    return ", ".join(parts)


def read(path):
    """Returns the text of path, or "" when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""
