"""Shared helpers of the GPU validation kit (scripts/gpu-check.sh).

Each step module (preflight, numerics, conformance, discovery, models, training, traces)
parses the common arguments into a Context, runs its commands through Context.run (which
time-boxes every command against the step's deadline, or only prints it in a dry run) and
records one result per check in WORK/steps/STEP.json through StepResult.  StepResult
rewrites that file after every check, so a step killed by its timeout still leaves what it
measured.

Standard library only: the tests import this module on machines without a GPU or PyTorch.
"""

import argparse
import glob
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time

# The interpreter that runs the steps and the PyTorch driver (the one that holds torch).
PYTHON = "python3"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Check statuses, worst first.  "info" and "skipped" never make a step fail.
STATUSES = ("fail", "error", "timeout", "pass", "info", "skipped")

# Environment variables a job must not inherit from the caller (they would change what the
# shim or the program does behind the job's back).  LD_LIBRARY_PATH is inherited (it may
# be how the machine finds its driver): a job's own directories go in front of it.
SCRUBBED_PREFIXES = ("CONVBN_", "TORCH_CUDNN_")
SCRUBBED = ("LD_PRELOAD", "NVIDIA_TF32_OVERRIDE")

# What `TORCH_CUDNN_V8_API_DISABLED=1` is called in results: PyTorch's legacy cuDNN API path.
API_ENVS = {"default": {}, "legacy": {"TORCH_CUDNN_V8_API_DISABLED": "1"}}

# The e2e programs and their per-type tolerances for a chained network (tests/e2e/run.sh).
CHAIN_TOLERANCE = {"float": 1e-5, "half": 5e-3, "bfloat16": 3e-2}


def add_common_args(parser):
    """Adds the arguments every step takes (scripts/gpu-check.sh passes them all)."""
    parser.add_argument("--build", default="build", help="build directory (default build)")
    parser.add_argument("--work", required=True, help="work directory for logs and results")
    parser.add_argument("--out", required=True, help="directory whose files come back")
    parser.add_argument("--deadline", type=float, default=0.0,
                        help="epoch seconds by which the step must have finished")
    parser.add_argument("--emulation", action="store_true",
                        help="use build/emu instead of the real cuDNN and CUDA runtime")
    parser.add_argument("--quick", action="store_true", help="fewer cases and iterations")
    parser.add_argument("--models", default="", help="comma-separated torchvision models")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")


def parse_args(description, argv=None):
    """Returns the Context for a step's command line."""
    parser = argparse.ArgumentParser(description=description)
    add_common_args(parser)
    return Context(parser.parse_args(argv))


def now():
    """Returns the wall-clock time in epoch seconds."""
    return time.time()


class JobResult:
    """What one command did: exit status, timeout, duration and its captured output."""

    def __init__(self, rc=0, timed_out=False, duration=0.0, stdout="", stderr="", dry=False,
                 skipped=""):
        self.rc = rc
        self.timed_out = timed_out
        self.duration = duration
        self.stdout = stdout
        self.stderr = stderr
        self.dry = dry
        self.skipped = skipped

    @property
    def ok(self):
        """True when the command ran, finished in time and exited 0."""
        return not (self.dry or self.skipped or self.timed_out) and self.rc == 0

    def status(self):
        """Returns the check status this result alone implies."""
        if self.skipped:
            return "skipped"
        if self.timed_out:
            return "timeout"
        return "pass" if self.rc == 0 else ("fail" if self.rc == 1 else "error")

    def why(self, lines=3):
        """Returns a one-line explanation of a failure: the last lines of stderr or stdout."""
        if self.skipped:
            return self.skipped
        if self.timed_out:
            return "timed out after %.0f s" % self.duration
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        tail = " | ".join(line.strip() for line in text[-lines:])
        return "exit %d%s" % (self.rc, ": " + tail if tail else "")


class Context:
    """Paths, options and the deadline of one step, and the way it runs commands."""

    def __init__(self, args):
        self.repo = REPO
        self.build = os.path.join(REPO, args.build) if not os.path.isabs(args.build) else args.build
        self.work = os.path.abspath(args.work)
        self.out = os.path.abspath(args.out)
        self.deadline = args.deadline or (now() + 3600)
        self.emulation = args.emulation
        self.quick = args.quick
        self.dry_run = args.dry_run
        self.models = [m for m in args.models.split(",") if m]
        self.shim = os.path.join(self.build, "libconvbn_shim.so")
        self.emu_dir = os.path.join(self.build, "emu")
        self.e2e = os.path.join(self.build, "tests", "e2e")
        self.libc10 = os.path.join(self.build, "tests", "libc10.so")
        self.bench = os.path.join(self.build, "bench", "convbn-bench")
        self.fallback_dir = os.path.join(self.work, "libfallback")
        self._libs = None

    def path(self, *parts):
        """Returns WORK/parts..., creating its parent directory."""
        full = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    def dir(self, *parts):
        """Returns the directory WORK/parts..., created."""
        full = os.path.join(self.work, *parts)
        os.makedirs(full, exist_ok=True)
        return full

    def short(self, path):
        """Returns path as WORK/... when under the work directory, else as rel() does."""
        if path == self.work or path.startswith(self.work + os.sep):
            return "WORK" + path[len(self.work):]
        return self.rel(path)

    def rel(self, path):
        """Returns path relative to the repository when inside it (for printing)."""
        try:
            rel = os.path.relpath(path, self.repo)
        except ValueError:
            return path
        return path if rel.startswith("..") else rel

    def remaining(self):
        """Returns the seconds left before the step's deadline."""
        return self.deadline - now()

    def budget(self, later=0, each=20.0):
        """Returns the seconds a command may take now when `later` commands still follow it
        before the deadline: all that is left beyond `each` seconds for each of them, or,
        when that is less than `each`, an equal share of what is left (at least 5)."""
        left = self.remaining() - 3
        if left - later * each >= each:
            return left - later * each
        return max(5.0, left / (later + 1))

    def libs(self):
        """Returns the real library directories (see find_real_libs), found once."""
        if self._libs is None:
            self._libs = find_real_libs(self.emulation, self.emu_dir)
        return self._libs

    def lib_path(self, which):
        """Returns LD_LIBRARY_PATH for `real` or `emu` libraries, plus the fallback dir."""
        if which == "emu":
            dirs = [self.emu_dir]
        else:
            libs = self.libs()
            dirs = [libs.get("cudnn") or "<cuDNN lib dir: not found>",
                    libs.get("cudart") or "<CUDA runtime lib dir: not found>"]
            dirs += [d for d in libs.get("extra", []) if d not in dirs]
        if os.path.isdir(self.fallback_dir) and os.listdir(self.fallback_dir):
            dirs.append(self.fallback_dir)
        unique = []
        for d in dirs:
            if d not in unique:
                unique.append(d)
        return ":".join(unique)

    def c_env(self, which="real", preload=(), **extra):
        """Returns the environment overrides for a C program of the build run over the
        `real` or `emu` libraries, with the given libraries preloaded.  Real runs get
        NVIDIA_TF32_OVERRIDE=0 (fp32 convolutions in fp32, as the emulation computes them)
        unless extra sets it."""
        env = {"LD_LIBRARY_PATH": self.lib_path(which)}
        if which == "real" and not self.emulation:
            env["NVIDIA_TF32_OVERRIDE"] = "0"
        if preload:
            env["LD_PRELOAD"] = ":".join(preload)
        env.update({k: str(v) for k, v in extra.items() if v is not None})
        return {k: v for k, v in env.items() if v != ""}

    def py_env(self, preload=False, api="default", **extra):
        """Returns the environment overrides for a PyTorch driver process: the shim
        preloaded or not, PyTorch's cuDNN API path (`default` or `legacy`), and extra."""
        env = dict(API_ENVS[api])
        env["PYTHONUNBUFFERED"] = "1"
        if preload:
            env["LD_PRELOAD"] = self.shim
            if os.path.isdir(self.fallback_dir) and os.listdir(self.fallback_dir):
                env["LD_LIBRARY_PATH"] = self.fallback_dir
        env.update({k: str(v) for k, v in extra.items() if v is not None})
        return env

    def run(self, name, argv, env=None, timeout=60.0, log=None, cwd=None):
        """Runs argv with the caller's environment (scrubbed of CONVBN_*, LD_PRELOAD, ...)
        plus env, for at most min(timeout, time left before the deadline) seconds.  Writes
        the command, stdout and stderr to WORK/log when given.  In a dry run, prints the
        command and returns a result with dry=True.  Returns a JobResult."""
        env = env or {}
        if self.dry_run:
            print("  would run [%s] (<= %.0f s): %s" % (name, timeout, command_text(argv, env, self)))
            return JobResult(dry=True)
        limit = min(timeout, self.remaining() - 2)
        if limit < 1:
            return JobResult(skipped="not run: no time left in the step's budget")
        full = merged_environ(env)
        start = now()
        try:
            proc = subprocess.run(argv, env=full, cwd=cwd or self.repo, timeout=limit,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
            result = JobResult(proc.returncode, False, now() - start,
                               proc.stdout.decode("utf-8", "replace"),
                               proc.stderr.decode("utf-8", "replace"))
        except subprocess.TimeoutExpired as exc:
            result = JobResult(124, True, now() - start, decode(exc.stdout), decode(exc.stderr))
        except OSError as exc:
            result = JobResult(127, False, now() - start, "", "cannot run %s: %s" % (argv[0], exc))
        if log:
            write_log(self.path(log), argv, env, result, self)
        return result


def decode(data):
    """Returns bytes (or None) as text."""
    return data.decode("utf-8", "replace") if data else ""


def scrubbed_environ():
    """Returns a copy of os.environ without the variables listed in SCRUBBED*."""
    return {k: v for k, v in os.environ.items()
            if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)}


def merged_environ(env):
    """Returns the environment of a job: the caller's, scrubbed, with env applied; env's
    LD_LIBRARY_PATH goes in front of the inherited one."""
    full = scrubbed_environ()
    inherited = full.get("LD_LIBRARY_PATH", "")
    full.update(env)
    if env.get("LD_LIBRARY_PATH") and inherited:
        full["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"] + ":" + inherited
    return full


def command_text(argv, env, ctx=None):
    """Returns `VAR=value ... argv` as one shell-quoted line: paths relative to the
    repository or to WORK, an inline script as `<script of N lines>`."""
    def short(text):
        if "\n" in text:
            return "<script of %d lines>" % len(text.strip().splitlines())
        return ctx.short(text) if ctx else text
    parts = ["%s=%s" % (k, shlex.quote(":".join(short(p) for p in v.split(":"))))
             for k, v in sorted(env.items())]
    parts += [shlex.quote(short(a)) for a in argv]
    return " ".join(parts)


def write_log(path, argv, env, result, ctx=None):
    """Writes the command, its status, stdout and stderr to path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("$ %s\n" % command_text(argv, env, ctx))
        f.write("# rc=%d timed_out=%s duration=%.2fs\n" % (result.rc, result.timed_out,
                                                          result.duration))
        f.write("## stdout\n%s\n## stderr\n%s\n" % (result.stdout, result.stderr))


def nvidia_roots():
    """Returns the directories of the `nvidia` Python namespace package (pip's CUDA
    libraries: nvidia/cudnn, nvidia/cu13, nvidia/cuda_runtime, ...), without importing
    torch."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [p for p in spec.submodule_search_locations if os.path.isdir(p)]


def lib_dirs_under(roots):
    """Returns every nvidia/*/lib and nvidia/*/lib64 directory under roots, sorted."""
    dirs = []
    for root in roots:
        for sub in ("lib", "lib64"):
            dirs += sorted(glob.glob(os.path.join(root, "*", sub)))
    return [d for d in dirs if os.path.isdir(d)]


def first_dir_with(pattern, dirs):
    """Returns the first directory of dirs holding a file matching pattern, or None."""
    for d in dirs:
        if glob.glob(os.path.join(d, pattern)):
            return d
    return None


def find_real_libs(emulation=False, emu_dir=""):
    """Returns {"cudnn": dir, "cudart": dir, "extra": [dirs], "roots": [...]}: where the
    real libcudnn.so.9 and libcudart.so.13 live (pip's nvidia packages first, then
    CUDA_HOME/lib64 and /usr/local/cuda/lib64); None for a library not found.  With
    emulation, both are the emulation directory."""
    if emulation:
        return {"cudnn": emu_dir, "cudart": emu_dir, "extra": [], "roots": []}
    roots = nvidia_roots()
    pip_dirs = lib_dirs_under(roots)
    system = [os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "lib64"),
              "/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu"]
    system = [d for d in system if os.path.isdir(d)]
    return {
        "cudnn": first_dir_with("libcudnn.so.9*", pip_dirs + system),
        "cudart": first_dir_with("libcudart.so.13*", pip_dirs + system),
        "extra": pip_dirs,
        "roots": roots,
    }


def cudnn_include_dir():
    """Returns the include directory of pip's nvidia.cudnn package, or None."""
    for root in nvidia_roots():
        inc = os.path.join(root, "cudnn", "include")
        if os.path.isfile(os.path.join(inc, "cudnn_version.h")):
            return inc
    return None


def write_json(path, doc):
    """Writes doc to path as indented JSON, atomically (rename of a temporary file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path, default=None):
    """Returns the JSON document at path, or default when missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_jsonl(path):
    """Returns the JSON objects of a JSON Lines file (unreadable lines skipped)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return rows


class StepResult:
    """The result file of one step: WORK/steps/STEP.json with its checks, notes and data."""

    MARK = {"pass": "ok  ", "fail": "FAIL", "error": "ERR ", "timeout": "TIME",
            "info": "info", "skipped": "skip"}

    def __init__(self, ctx, step, title):
        self.ctx = ctx
        self.doc = {"step": step, "title": title, "checks": [], "notes": [], "data": {},
                    "emulation": bool(ctx.emulation)}
        self.file = None if ctx.dry_run else ctx.path("steps", step + ".json")
        if ctx.dry_run:
            print("[%s] %s" % (step, title))
        self.save()

    @property
    def data(self):
        """The step-specific data dictionary (call save() after changing it)."""
        return self.doc["data"]

    def check(self, name, status, detail="", **extra):
        """Records one check (status one of STATUSES), prints it, saves the file."""
        if self.ctx.dry_run:
            return
        assert status in STATUSES, status
        entry = {"name": name, "status": status, "detail": detail}
        entry.update(extra)
        self.doc["checks"].append(entry)
        print("%s %s%s" % (self.MARK[status], name, ": " + detail if detail else ""), flush=True)
        self.save()

    def check_job(self, name, result, detail="", log=None):
        """Records the check implied by a JobResult alone (skipped in a dry run)."""
        if result.dry:
            return
        status = result.status()
        text = detail if status == "pass" else result.why()
        self.check(name, status, text, duration_s=round(result.duration, 2), log=log)

    def note(self, text):
        """Adds a note (shown under the step in the report)."""
        if self.ctx.dry_run:
            print("  note: %s" % text)
            return
        self.doc["notes"].append(text)
        self.save()

    def save(self):
        """Writes the result file (not in a dry run)."""
        if self.file:
            write_json(self.file, self.doc)


def worst(statuses):
    """Returns the worst of the given check statuses ("pass" when there are none)."""
    ranked = [s for s in STATUSES if s in statuses]
    top = ranked[0] if ranked else "pass"
    return "pass" if top in ("info", "skipped") else top


def main_guard(func):
    """Runs func() and exits 0; an unexpected exception is printed and exits 2 (the
    report shows the step as an error with its log)."""
    try:
        func()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never hidden
        import traceback
        traceback.print_exc()
        print("step failed: %s: %s" % (type(exc).__name__, exc), file=sys.stderr)
        sys.exit(2)
    sys.exit(0)


def cli_args():
    """Returns an ArgumentParser with the common arguments (for steps that add more)."""
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    return parser
