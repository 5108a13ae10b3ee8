#!/usr/bin/env python3
"""Generate the shim's cuDNN interposers from the installed cuDNN headers.

Every function that the cuDNN headers declare must be interposed (DESIGN.md section 5).
This script preprocesses <cudnn.h>, parses each prototype whose name starts with
"cudnn", classifies it with src/cudnn_calls.list (host, work or custom) and writes
into the output directory:

  cudnn_hooks.def        one X-macro line per function:
                         CONVBN_CUDNN_FN(class, ret, name, (params), (args))
  cudnn_passthrough.c    an exported interposer for every host and work function
                         (custom functions are written by hand in src/hooks_cudnn_*.c)
  exports.txt            the sorted names of all header functions

With --strict, a header function missing from the list is an error; without it, the
function is treated as "work" (the conservative class) with a warning on stderr.
List entries that the headers do not declare are ignored (other cuDNN versions).

usage: gen-cudnn-hooks.py --include DIR --list FILE --out DIR [--strict] [--cc CC]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

CLASSES = ("host", "work", "custom")

# Value a wrapper returns when the real function cannot be found, per return type.
NOT_INITIALISED = {
    "cudnnStatus_t": "CUDNN_STATUS_NOT_INITIALIZED",
    "size_t": "0",
    "const char *": '"CUDNN_STATUS_NOT_INITIALIZED"',
    "void": None,
}

C_KEYWORDS = {
    "auto", "char", "const", "double", "enum", "extern", "float", "int", "long", "register",
    "restrict", "short", "signed", "static", "struct", "union", "unsigned", "void", "volatile",
    "_Bool", "__restrict",
}

IDENT = re.compile(r"[A-Za-z_]\w*")
TOKEN = re.compile(r"[A-Za-z_]\w*|\*|\S")
PROTOTYPE = re.compile(r"^(?P<ret>.*?)\b(?P<name>cudnn\w*)\s*\((?P<params>.*)\)$", re.S)
MENTIONS_CUDNN_CALL = re.compile(r"\bcudnn\w*\s*\(")
WRAP_COLUMN = 100


class GenError(Exception):
    """A problem the user must fix; the message says what and where."""


class Function:
    """One parsed prototype: return type, name, and (type, name, array suffix) params."""

    def __init__(self, ret, name, params):
        self.ret = ret
        self.name = name
        self.params = params
        self.kind = None

    def param_list(self):
        """Returns the parameter declarations, "void" for none."""
        if not self.params:
            return ["void"]
        return [join_declarator(ptype, pname) + arr for ptype, pname, arr in self.params]

    def arg_list(self):
        """Returns the parameter names, in order."""
        return [pname for _, pname, _ in self.params]

    def handle_arg(self):
        """Returns the name of the first cudnnHandle_t parameter, or "NULL" when none."""
        for ptype, pname, arr in self.params:
            unqualified = [t for t in ptype if t not in ("const", "volatile")]
            if not arr and unqualified == ["cudnnHandle_t"]:
                return pname
        return "NULL"


def join_declarator(type_tokens, name=None):
    """Joins type tokens (and an optional name) C-style: "const char *const *name"."""
    out = ""
    for tok in type_tokens + ([name] if name else []):
        if out and not out.endswith("*"):
            out += " "
        out += tok
    return out


def preprocess(cc, include_dir):
    """Returns the preprocessed text of <cudnn.h> (cc -E -P -I include_dir)."""
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as src:
        src.write("#include <cudnn.h>\n")
    try:
        result = subprocess.run([cc, "-E", "-P", "-I" + include_dir, src.name],
                                capture_output=True, text=True, check=False)
    except OSError as err:
        raise GenError(f"cannot run the C preprocessor '{cc}': {err}") from err
    finally:
        os.unlink(src.name)
    if result.returncode != 0:
        raise GenError(f"'{cc} -E' failed on <cudnn.h> from {include_dir}:\n{result.stderr}")
    return result.stdout


def cudnn_version(cc, include_dir):
    """Returns "MAJOR.MINOR.PATCH" from cudnn_version.h, or "unknown version"."""
    result = subprocess.run([cc, "-E", "-dM", "-I" + include_dir, "-x", "c", "-"],
                            input="#include <cudnn_version.h>\n", capture_output=True,
                            text=True, check=False)
    macros = dict(re.findall(r"#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) (\d+)", result.stdout))
    if len(macros) != 3:
        return "unknown version"
    return f"{macros['MAJOR']}.{macros['MINOR']}.{macros['PATCHLEVEL']}"


def strip_attributes(text):
    """Returns text without any __attribute__((...)) (balanced parentheses)."""
    out = []
    pos = 0
    for match in re.finditer(r"\b__attribute__\s*\(", text):
        if match.start() < pos:
            continue
        out.append(text[pos:match.start()])
        depth = 0
        i = match.end() - 1
        while i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        if depth != 0:
            raise GenError("unbalanced parentheses after __attribute__")
        pos = i
    out.append(text[pos:])
    return "".join(out)


def split_declarations(text):
    """Returns the top-level declarations of text, without their ';'.  Brace bodies are
    reduced to "{}"; a function body ends its declaration like a ';' does."""
    decls = []
    current = []
    depth = 0
    for char in text:
        if char == "{":
            depth += 1
            if depth == 1:
                current.append("{}")
            continue
        if char == "}":
            depth -= 1
            if depth < 0:
                raise GenError("unbalanced '}' in the preprocessed headers")
            if depth == 0 and "".join(current).rstrip()[:-2].rstrip().endswith(")"):
                decls.append("".join(current))
                current = []
            continue
        if depth > 0:
            continue
        if char == ";":
            decls.append("".join(current))
            current = []
        else:
            current.append(char)
    return [" ".join(d.split()) for d in decls if d.strip()]


def split_top_level(text, sep=","):
    """Returns text split at sep outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_type(text, where):
    """Returns the tokens of a type (identifiers and '*'); raises on anything else."""
    tokens = TOKEN.findall(text)
    for tok in tokens:
        if tok != "*" and not IDENT.fullmatch(tok):
            raise GenError(f"{where}: cannot parse type '{text}' (unexpected '{tok}')")
    if not tokens:
        raise GenError(f"{where}: empty type")
    return tokens


def parse_param(text, where):
    """Returns (type tokens, name, array suffix) of one parameter declaration."""
    match = re.fullmatch(r"(?P<decl>.*?)(?P<arr>(\s*\[[^\]]*\])*)", text)
    decl, arr = match.group("decl").strip(), re.sub(r"\s+", "", match.group("arr"))
    tokens = parse_type(decl, where)
    name = tokens[-1]
    if name == "*" or name in C_KEYWORDS or len(tokens) < 2:
        raise GenError(f"{where}: parameter '{text}' has no name")
    return tokens[:-1], name, arr


def parse_prototype(decl):
    """Returns a Function for a cudnn* prototype, None for any other declaration."""
    if not MENTIONS_CUDNN_CALL.search(decl) or decl.startswith("typedef "):
        return None
    match = PROTOTYPE.match(decl)
    if not match or "{}" in decl:
        raise GenError(f"cannot parse this declaration as a cuDNN prototype: {decl}")
    name = match.group("name")
    ret_tokens = [t for t in parse_type(match.group("ret"), name) if t != "extern"]
    ret = join_declarator(ret_tokens)
    if ret not in NOT_INITIALISED:
        raise GenError(f"{name}: unsupported return type '{ret}' (the generator knows "
                       f"{', '.join(NOT_INITIALISED)}); add its not-initialised value")
    raw = match.group("params").strip()
    if raw == "void":
        return Function(ret, name, [])
    if not raw:
        raise GenError(f"{name}: empty parameter list; cuDNN declares none without 'void'")
    params = []
    for i, text in enumerate(split_top_level(raw)):
        if text == "...":
            raise GenError(f"{name}: variadic functions cannot be forwarded")
        if "(" in text:
            raise GenError(f"{name}: parameter {i + 1} '{text}' is a function pointer; "
                           "use a typedef or extend the generator")
        params.append(parse_param(text, f"{name} parameter {i + 1}"))
    names = [p[1] for p in params]
    if len(set(names)) != len(names):
        raise GenError(f"{name}: duplicate parameter names {names}")
    return Function(ret, name, params)


def parse_functions(text):
    """Returns the cudnn* functions of preprocessed header text, in declaration order."""
    functions = {}
    for decl in split_declarations(strip_attributes(text)):
        fn = parse_prototype(decl)
        if fn is None:
            continue
        old = functions.get(fn.name)
        if old and (old.ret, old.params) != (fn.ret, fn.params):
            raise GenError(f"{fn.name} is declared twice with different prototypes")
        functions.setdefault(fn.name, fn)
    if not functions:
        raise GenError("no cudnn* function found in the headers")
    return list(functions.values())


def read_list(path):
    """Returns {name: class} from a calls list (lines "host|work|custom NAME", # comments)."""
    classes = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except OSError as err:
        raise GenError(f"cannot read {path}: {err.strerror}") from err
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or fields[0] not in CLASSES or not IDENT.fullmatch(fields[1]):
            raise GenError(f"{path}:{number}: expected '<{'|'.join(CLASSES)}> NAME', "
                           f"got '{line.strip()}'")
        if fields[1] in classes:
            raise GenError(f"{path}:{number}: {fields[1]} is listed twice")
        classes[fields[1]] = fields[0]
    return classes


def classify(functions, classes, list_path, strict):
    """Sets each function's kind from the list; unlisted ones are an error when strict,
    else "work" with a warning."""
    missing = [fn.name for fn in functions if fn.name not in classes]
    if missing and strict:
        raise GenError(f"{len(missing)} cuDNN function(s) declared in the headers are missing "
                       f"from {list_path}:\n  " + "\n  ".join(missing) +
                       f"\nAdd each to {list_path} as host, work or custom (see its header).")
    for name in missing:
        print(f"gen-cudnn-hooks: warning: {name} is not in {list_path}; treating it as work",
              file=sys.stderr)
    for fn in functions:
        fn.kind = classes.get(fn.name, "work")


def wrap_call(prefix, items, suffix, indent):
    """Returns prefix + items joined by ", " + suffix, wrapped at WRAP_COLUMN."""
    lines, line = [], prefix
    for i, item in enumerate(items):
        piece = item + ("," if i + 1 < len(items) else suffix)
        if len(line) + 1 + len(piece) > WRAP_COLUMN and line.strip():
            lines.append(line.rstrip())
            line = " " * indent + piece
        else:
            line += ("" if line == prefix else " ") + piece
    if not items:
        line += suffix
    lines.append(line)
    return "\n".join(lines)


def def_line(fn):
    """Returns the X-macro line of one function."""
    args = ", ".join(fn.arg_list())
    return (f"CONVBN_CUDNN_FN({fn.kind}, {fn.ret}, {fn.name}, "
            f"({', '.join(fn.param_list())}), ({args}))")


def wrapper(fn):
    """Returns the C interposer of a host or work function."""
    head = f"CONVBN_EXPORT {fn.ret}{'' if fn.ret.endswith('*') else ' '}{fn.name}("
    value = NOT_INITIALISED[fn.ret]
    give_up = "return;" if value is None else f"return {value};"
    body = [wrap_call(head, fn.param_list(), ")", 4), "{",
            f"    if (!CONVBN_REAL_READY({fn.name})) {{",
            "        convbn_real_cudnn_resolve();",
            f"        if (!real_{fn.name})",
            f"            {give_up}",
            "    }"]
    if fn.kind == "host":
        body.append(wrap_call(f"    {'' if fn.ret == 'void' else 'return '}real_{fn.name}(",
                              fn.arg_list(), ");", 8))
    else:
        keep = "" if fn.ret == "void" else f"{fn.ret}{'' if fn.ret.endswith('*') else ' '}result = "
        body += [f'    int guarded = convbn_work_begin("{fn.name}", {fn.handle_arg()});',
                 wrap_call(f"    {keep}real_{fn.name}(", fn.arg_list(), ");", 8),
                 "    convbn_work_end(guarded);"]
        if fn.ret != "void":
            body.append("    return result;")
    body += ["}", ""]
    return "\n".join(body)


def banner(origin, what):
    """Returns the opening comment of a generated C file; origin is (headers, list)."""
    return (f"/* Generated by scripts/gen-cudnn-hooks.py from {origin[0]}\n"
            f" * and {origin[1]}; do not edit.\n *\n * {what} */\n")


def write(path, text):
    """Writes text to path (replacing it)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def generate(functions, origin, out_dir):
    """Writes cudnn_hooks.def, cudnn_passthrough.c and exports.txt into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    counts = {k: sum(fn.kind == k for fn in functions) for k in CLASSES}
    summary = ", ".join(f"{counts[k]} {k}" for k in CLASSES)
    write(os.path.join(out_dir, "cudnn_hooks.def"),
          banner(origin, f"Every cuDNN function of the headers ({len(functions)}: {summary}) as\n"
                 " * CONVBN_CUDNN_FN(class, ret, name, (params), (args)); class is host, work\n"
                 " * or custom (see the list).  Include it with CONVBN_CUDNN_FN defined.") +
          "".join(def_line(fn) + "\n" for fn in functions))
    wrappers = [wrapper(fn) for fn in functions if fn.kind != "custom"]
    write(os.path.join(out_dir, "cudnn_passthrough.c"),
          banner(origin, "Exported interposers for the host and work cuDNN functions: each\n"
                 " * resolves the real function lazily, returns the not-initialised value\n"
                 " * when it cannot be found, flushes pending work first for work functions,\n"
                 " * and forwards the caller's exact arguments.") +
          '#include <stddef.h>\n\n#include <cudnn.h>\n\n'
          '#include "convbn/hooks.h"\n#include "convbn/real.h"\n\n'
          '#define CONVBN_EXPORT __attribute__((visibility("default")))\n\n' +
          "\n".join(wrappers))
    write(os.path.join(out_dir, "exports.txt"),
          f"# Generated by scripts/gen-cudnn-hooks.py from {origin[0]}\n"
          f"# and {origin[1]}; do not edit.  The shim's cuDNN exports, one per line.\n" +
          "".join(name + "\n" for name in sorted(fn.name for fn in functions)))
    return counts


def parse_args(argv):
    """Returns the parsed command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--include", required=True, help="directory holding cudnn.h")
    parser.add_argument("--list", required=True, help="the calls list (src/cudnn_calls.list)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--strict", action="store_true",
                        help="fail when a header function is missing from the list")
    parser.add_argument("--cc", default=os.environ.get("CC") or "cc",
                        help="C compiler used as preprocessor (default: $CC or cc)")
    return parser.parse_args(argv)


def main(argv):
    """Runs the generator; returns the exit status."""
    args = parse_args(argv)
    try:
        functions = parse_functions(preprocess(args.cc, args.include))
        classify(functions, read_list(args.list), args.list, args.strict)
        origin = (f"{os.path.join(args.include, 'cudnn*.h')} "
                  f"(cuDNN {cudnn_version(args.cc, args.include)})", args.list)
        counts = generate(functions, origin, args.out)
    except GenError as err:
        print(f"gen-cudnn-hooks: error: {err}", file=sys.stderr)
        return 1
    print(f"gen-cudnn-hooks: {len(functions)} cuDNN functions "
          f"({', '.join(f'{n} {k}' for k, n in counts.items())}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
