#!/usr/bin/env python3
"""Draw the activation bytes saved per conv -> BatchNorm pair of one trace as a PNG bar chart.

Reads the JSON that `convbn-bench --summary --json FILE` writes and draws one bar per pair
(x: pair index in call order, y: bytes saved), with axes, tick marks, grid lines and a title.
Pure Python standard library: the PNG is written with zlib and struct, the text with a
built-in 5x7 bitmap font (upper-case letters, digits and a little punctuation).

What the reader expects (anything else is ignored, so later fields do not break it):

  {"traces": [                                  top level: an object with "traces", a bare
     {"trace": "bench/traces/resnet50.jsonl",   list of trace objects, or one trace object
      "model": "resnet50",                      optional; the title uses model, else the
                                                trace file's base name
      "layers": [{"layer": 0, "bytes_saved": 65536, "verdict": "fusable"}, ...],
                                                what convbn-bench writes: one object per pair;
                                                a verdict other than "fusable" draws grey
      "pairs": [                                accepted instead of "layers": one object per pair
        {"index": 0,                            optional; default: position in the list
         "signature": "...",                    optional, not drawn
         "bytes_saved": 131072,                 required (also accepted: activation_bytes_saved,
                                                saved_bytes, bytes)
         "fused": true}, ...]}, ...]}           optional ("fusable" also accepted): false
                                                draws the bar grey

usage: plot-bytes-saved.py SUMMARY.json [-o OUT.png] [--trace NAME|INDEX] [--list]
                           [--width PX] [--height PX]

--trace picks the trace by model name, path, file base name or position (default: the
first). Exit status: 0 on success, 1 on unreadable or unexpected input, 2 on a usage error.
"""

import argparse
import json
import os
import struct
import sys
import zlib

BYTES_KEYS = ("bytes_saved", "activation_bytes_saved", "saved_bytes", "bytes")
STATUS_KEYS = ("fused", "fusable")

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
BAR = (52, 101, 164)
BAR_OFF = (170, 170, 170)

# ----------------------------------------------------------------------------------------
# 5x7 bitmap font: seven rows of five pixels per glyph, '#' = ink
# ----------------------------------------------------------------------------------------

FONT_ROWS = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
FONT = {ch: [row for row in rows.split()] for ch, rows in FONT_ROWS.items()}
GLYPH_W, GLYPH_H = 5, 7


def text_width(text, scale):
    """Pixel width of text drawn at scale (one pixel column of spacing per glyph)."""
    return max(0, len(text) * (GLYPH_W + 1) * scale - scale)


# ----------------------------------------------------------------------------------------
# Canvas and PNG
# ----------------------------------------------------------------------------------------

class Canvas:
    """An RGB image in memory, drawn with rectangles and bitmap text."""

    def __init__(self, width, height, color=WHITE):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(color) * (width * height))

    def rect(self, x0, y0, x1, y1, color):
        """Fill the rectangle [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x, y, text, scale=1, color=BLACK):
        """Draw text with its top-left corner at (x, y); unknown characters print as '?'."""
        for ch in text.upper():
            glyph = FONT.get(ch, FONT["?"])
            for gy, row in enumerate(glyph):
                for gx, bit in enumerate(row):
                    if bit == "#":
                        self.rect(x + gx * scale, y + gy * scale,
                                  x + (gx + 1) * scale, y + (gy + 1) * scale, color)
            x += (GLYPH_W + 1) * scale

    def png(self):
        """The image as PNG file bytes (8-bit RGB, no filtering, zlib level 9)."""
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride])
                       for y in range(self.height))
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


# ----------------------------------------------------------------------------------------
# Reading the summary
# ----------------------------------------------------------------------------------------

class InputError(Exception):
    """The summary cannot be read or does not have the expected shape."""


def load_traces(path):
    """Return the list of trace objects in the summary file at path."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InputError("%s: cannot read: %s" % (path, e.strerror))
    except ValueError as e:
        raise InputError("%s: not valid JSON: %s" % (path, e))
    if isinstance(data, dict) and isinstance(data.get("traces"), list):
        traces = data["traces"]
    elif isinstance(data, list):
        traces = data
    elif isinstance(data, dict) and "pairs" in data:
        traces = [data]
    else:
        raise InputError("%s: expected an object with a \"traces\" list" % path)
    traces = [t for t in traces if isinstance(t, dict)]
    if not traces:
        raise InputError("%s: no trace objects in \"traces\"" % path)
    return traces


def trace_name(trace, position):
    """model, else the trace file's base name without extension, else 'trace N'."""
    if isinstance(trace.get("model"), str) and trace["model"]:
        return trace["model"]
    if isinstance(trace.get("trace"), str) and trace["trace"]:
        return os.path.splitext(os.path.basename(trace["trace"]))[0]
    return "trace %d" % position


def select_trace(traces, wanted):
    """The trace named by wanted (model, path, base name or position), or the first."""
    if wanted is None:
        return traces[0], 0
    for i, t in enumerate(traces):
        path = t.get("trace") if isinstance(t.get("trace"), str) else ""
        if wanted in (trace_name(t, i), path, os.path.basename(path)):
            return t, i
    if wanted.isdigit() and int(wanted) < len(traces):
        return traces[int(wanted)], int(wanted)
    names = ", ".join(trace_name(t, i) for i, t in enumerate(traces))
    raise InputError("no trace %r in the summary (have: %s)" % (wanted, names))


def pair_bytes(pair):
    for key in BYTES_KEYS:
        value = pair.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return None


def read_pairs(trace, name):
    """Return [(index, bytes_saved, drawn_as_saved)] for the pairs of one trace: its
    "layers" list (what `convbn-bench --summary --json` writes: "layer", "bytes_saved",
    "verdict"), else its "pairs" list."""
    pairs = trace.get("layers")
    if isinstance(pairs, list):
        pairs = [dict(p, index=p.get("layer", i), fusable=p.get("verdict") == "fusable")
                 if isinstance(p, dict) else p for i, p in enumerate(pairs)]
    else:
        pairs = trace.get("pairs")
    if not isinstance(pairs, list):
        raise InputError("trace %s: missing \"layers\" or \"pairs\" list" % name)
    result = []
    for position, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise InputError("trace %s: pair %d is not an object" % (name, position))
        saved = pair_bytes(pair)
        if saved is None:
            raise InputError("trace %s: pair %d has none of the keys %s"
                             % (name, position, ", ".join(BYTES_KEYS)))
        index = pair.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool):
            index = position
        ok = all(pair.get(k, True) is not False for k in STATUS_KEYS)
        result.append((index, max(0, saved), ok))
    return result


# ----------------------------------------------------------------------------------------
# Chart
# ----------------------------------------------------------------------------------------

UNITS = (("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10), ("BYTES", 1))


def pick_unit(max_value):
    for name, size in UNITS:
        if max_value >= size:
            return name, size
    return UNITS[-1]


def nice_step(span, max_ticks=6):
    """The smallest 1, 2, 5 x 10^k step that covers span in at most max_ticks steps."""
    step = 1e-9
    while True:
        for m in (1, 2, 5):
            candidate = m * step
            if span / candidate <= max_ticks:
                return candidate
        step *= 10


def format_number(value):
    """Short tick label: integers plain, others with up to two decimals."""
    if abs(value - round(value)) < 1e-9:
        return "%d" % round(value)
    return ("%.2f" % value).rstrip("0").rstrip(".")


def format_bytes(n):
    name, size = pick_unit(n)
    return "%s %s" % (format_number(round(n / size, 1)), name)


def draw_chart(name, pairs, width, height):
    """Render the bar chart; returns the Canvas."""
    c = Canvas(width, height)
    total = sum(b for _, b, _ in pairs)
    peak = max([b for _, b, _ in pairs] + [1])
    unit, size = pick_unit(peak)
    step = nice_step(peak / size)
    top_value = step * -(-(peak / size) // step)  # round the axis up to a whole step

    title = "ACTIVATION BYTES SAVED PER CONV-BN PAIR: %s" % name
    subtitle = "%d PAIRS, TOTAL %s" % (len(pairs), format_bytes(total))
    ts = next(k for k in (3, 2, 1) if k == 1 or text_width(title, k) <= width - 20)
    ls = 2 if height >= 400 and width >= 640 else 1   # label scale
    c.text((width - text_width(title, ts)) // 2, 10, title, ts)
    c.text((width - text_width(subtitle, ls)) // 2, 14 + 7 * ts, subtitle, ls)

    ticks = [i * step for i in range(int(round(top_value / step)) + 1)]
    label_w = max(text_width(format_number(t), ls) for t in ticks)
    left, right = 16 + 4 * ls + label_w, width - 16
    plot_top, bottom = 40 + 7 * ts + 18 * ls, height - 20 - 14 * ls
    ylabel = unit + " SAVED"
    c.text(max(4, left - text_width(ylabel, ls) // 2), plot_top - 12 * ls - 6, ylabel, ls)

    # y axis: grid line, tick mark and label per tick
    for t in ticks:
        y = bottom - int(round((bottom - plot_top) * t / top_value))
        if t > 0:
            c.rect(left + 1, y, right, y + 1, GRID)
        c.rect(left - 5, y, left, y + 1, BLACK)
        label = format_number(t)
        c.text(left - 8 - text_width(label, ls), y - 3 * ls, label, ls)

    # bars
    n = max(1, len(pairs))
    slot = (right - left - 4) / n
    gap = 1 if slot >= 3 else 0
    for i, (_, saved, ok) in enumerate(pairs):
        x0 = left + 2 + int(round(i * slot))
        x1 = max(x0 + 1, left + 2 + int(round((i + 1) * slot)) - gap)
        h = int(round((bottom - plot_top) * (saved / size) / top_value))
        if not ok:
            h = max(h, 4)  # a pair that was not fused stays visible even when it saved nothing
        c.rect(x0, bottom - h, x1, bottom, BAR if ok else BAR_OFF)

    # x axis: ticks at pair indices spaced so that their labels do not collide
    widest = text_width(str(max([p[0] for p in pairs] + [0])), ls) + 4 * ls
    every = 1
    while every * slot < widest:
        every = every * 5 // 2 if str(every).startswith("2") else every * 2
    for i in range(0, len(pairs), every):
        x = left + 2 + int(round((i + 0.5) * slot))
        c.rect(x, bottom + 1, x + 1, bottom + 6, BLACK)
        label = str(pairs[i][0])
        c.text(x - text_width(label, ls) // 2, bottom + 9, label, ls)

    c.rect(left, plot_top, left + 1, bottom + 1, BLACK)   # y axis line
    c.rect(left, bottom, right, bottom + 1, BLACK)        # x axis line
    xlabel = "PAIR INDEX (CALL ORDER)"
    if any(not ok for _, _, ok in pairs):
        xlabel += "    GREY: NOT FUSED"
    c.text((left + right - text_width(xlabel, ls)) // 2, height - 4 - 7 * ls, xlabel, ls)
    return c


# ----------------------------------------------------------------------------------------

def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", help="JSON written by convbn-bench --summary --json FILE")
    p.add_argument("-o", "--output", help="PNG to write (default: bytes-saved-<model>.png)")
    p.add_argument("--trace", help="model name, trace path or position (default: the first)")
    p.add_argument("--list", action="store_true", help="list the traces in the summary")
    p.add_argument("--width", type=int, default=960)
    p.add_argument("--height", type=int, default=480)
    args = p.parse_args(argv)
    if not (320 <= args.width <= 8192 and 200 <= args.height <= 8192):
        p.error("--width must be 320..8192 and --height 200..8192")
    try:
        traces = load_traces(args.summary)
        if args.list:
            for i, t in enumerate(traces):
                rows = t.get("layers", t.get("pairs"))
                count = len(rows) if isinstance(rows, list) else 0
                print("%d %s %d pairs" % (i, trace_name(t, i), count))
            return 0
        trace, position = select_trace(traces, args.trace)
        name = trace_name(trace, position)
        pairs = read_pairs(trace, name)
        output = args.output or "bytes-saved-%s.png" % name.replace(" ", "-")
        png = draw_chart(name, pairs, args.width, args.height).png()
        with open(output, "wb") as f:
            f.write(png)
    except InputError as e:
        print("plot-bytes-saved: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("plot-bytes-saved: %s: %s" % (e.filename, e.strerror), file=sys.stderr)
        return 1
    print("plot-bytes-saved: wrote %s (%s, %d pairs)" % (output, name, len(pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
