"""Preflight of the GPU validation kit: what machine, card, driver, cuDNN, CUDA runtime,
PyTorch and commit this run is on, and whether the carried build can run there.

Checks: a GPU is visible (nvidia-smi); the shim loads when preloaded (its public counters
resolve in a preloaded process); the e2e programs and the bench resolve libcudnn.so.9 and
libcudart.so.13 to the real libraries, not to the emulation of the build machine (their
RUNPATH points there); PyTorch imports and sees the GPU.  The environment goes into the
step's data, which the report prints at the top.
"""

import datetime
import json
import os
import platform
import re
import socket
import subprocess

import kit

TORCH_PROBE = r"""
import json, sys
info = {"python": sys.version.split()[0]}
try:
    import torch
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["device"] = p.name
        info["capability"] = "%d.%d" % (p.major, p.minor)
        info["memory_gib"] = round(p.total_memory / 2**30, 1)
        info["multiprocessors"] = p.multi_processor_count
except Exception as exc:
    info["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import torchvision
    info["torchvision"] = torchvision.__version__
except Exception as exc:
    info["torchvision_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))
"""

COUNTERS_PROBE = ("import ctypes; ctypes.CDLL(None).convbn_get_counters; "
                  "print('convbn_get_counters resolved')")


def git_commit(ctx):
    """Returns {"commit": ..., "dirty": ...} from git when the tree has .git, else from the
    file `scripts/gpu-check.sh --stage` wrote into the build (BUILD/gpu-kit/source.txt)."""
    try:
        head = subprocess.run(["git", "-C", ctx.repo, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode == 0:
            status = subprocess.run(["git", "-C", ctx.repo, "status", "--porcelain"],
                                    capture_output=True, text=True, timeout=20)
            changed = len([l for l in status.stdout.splitlines() if l.strip()])
            return {"commit": head.stdout.strip(), "changed_files": changed, "from": "git"}
    except (OSError, subprocess.SubprocessError):
        pass
    staged = os.path.join(ctx.build, "gpu-kit", "source.txt")
    info = {"commit": "unknown", "from": "no .git and no %s" % ctx.rel(staged)}
    try:
        with open(staged, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key in ("commit", "changed_files", "staged_at"):
                    info[key] = value
        info["from"] = ctx.rel(staged)
    except OSError:
        pass
    return info


def nvidia_smi():
    """Returns {"name", "driver", "memory", "compute_cap"} of GPU 0, or {"error": ...}."""
    query = "name,driver_version,memory.total,compute_cap"
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=" + query, "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": "nvidia-smi: %s" % exc}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": "nvidia-smi exit %d: %s" % (proc.returncode, proc.stderr.strip()[:200])}
    fields = [f.strip() for f in proc.stdout.splitlines()[0].split(",")]
    keys = ["name", "driver", "memory", "compute_cap"]
    return dict(zip(keys, fields))


def header_version(path):
    """Returns MAJOR.MINOR.PATCH from a cudnn_version.h, or None."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    parts = [re.search(r"#define CUDNN_%s\s+(\d+)" % k, text) for k in ("MAJOR", "MINOR", "PATCHLEVEL")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def build_info(ctx):
    """Returns what the carried build holds: cuDNN headers it was built against, whether
    the CUDA fold kernel is embedded, which e2e programs and tools exist."""
    config = {}
    try:
        with open(os.path.join(ctx.repo, "build", "config.mk"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":=")
                if sep:
                    config[key.strip()] = value.strip()
    except OSError:
        pass
    programs = sorted(os.listdir(ctx.e2e)) if os.path.isdir(ctx.e2e) else []
    return {
        "built_against_cudnn": config.get("CUDNN_VERSION"),
        "nvcc_at_build": config.get("NVCC") or None,
        "fold_kernel_embedded": os.path.isfile(os.path.join(ctx.build, "gen", "fold_kernel.fatbin")),
        "shim": os.path.isfile(ctx.shim),
        "bench": os.path.isfile(ctx.bench),
        "libc10_standin": os.path.isfile(ctx.libc10),
        "e2e_programs": programs,
        "fallback_libs": sorted(os.listdir(ctx.fallback_dir)) if os.path.isdir(ctx.fallback_dir) else [],
    }


def ldd_map(ctx, binary, env):
    """Returns ({soname: path or "not found"}, JobResult) from ldd binary under env."""
    res = ctx.run("ldd " + os.path.basename(binary), ["ldd", binary], env, timeout=20,
                  log="preflight/ldd.%s.log" % os.path.basename(binary))
    found = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(.*?)\s*(\(0x[0-9a-f]+\))?$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found, res


def check_resolution(ctx, step, binary, want):
    """Checks that each soname in want resolves, and to a real library, not the emulation."""
    if not os.path.isfile(binary):
        step.check("libraries of %s" % ctx.rel(binary), "error", "not built (run make before the call)")
        return
    found, res = ldd_map(ctx, binary, ctx.c_env("real"))
    if res.dry:
        return
    problems, paths = [], []
    for soname in want:
        path = found.get(soname)
        if not path or path == "not found":
            problems.append("%s not found" % soname)
        elif not ctx.emulation and os.path.realpath(path).startswith(os.path.realpath(ctx.emu_dir)):
            problems.append("%s resolves to the emulation (%s)" % (soname, path))
        else:
            paths.append("%s -> %s" % (soname, path))
    missing = [s for s, p in found.items() if p == "not found" and s not in want]
    problems += ["%s not found" % s for s in missing]
    status = "fail" if problems else "pass"
    step.check("libraries of %s" % ctx.rel(binary), status, "; ".join(problems or paths))


def torch_info(ctx, step):
    """Runs the PyTorch probe; returns its JSON (empty on failure) and records a check."""
    res = ctx.run("torch probe", ["python3", "-c", TORCH_PROBE], ctx.py_env(), timeout=120,
                  log="preflight/torch.log")
    if res.dry:
        return {}
    info = {}
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pass
    if info.get("cuda_available"):
        step.check("PyTorch sees the GPU", "pass", "torch %s, cuDNN %s, %s" % (
            info.get("torch"), info.get("cudnn"), info.get("device")))
    else:
        status = "info" if ctx.emulation else "fail"
        if info:
            detail = info.get("torch_error") or "torch %s: no CUDA device" % info.get("torch")
        else:
            detail = res.why()
        step.check("PyTorch sees the GPU", status, detail)
    return info


def main():
    """Runs the preflight checks and records the environment."""
    ctx = kit.parse_args(__doc__)
    step = kit.StepResult(ctx, "preflight", "Machine, versions, and whether the build runs here")
    gpu = {} if ctx.dry_run else nvidia_smi()
    if ctx.dry_run:
        print("  would run: nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap")
    elif "error" in gpu:
        step.check("GPU visible", "info" if ctx.emulation else "fail", gpu["error"])
    else:
        step.check("GPU visible", "pass", "%s, driver %s, %s" % (gpu["name"], gpu["driver"], gpu["memory"]))
    libs = ctx.libs()
    if not ctx.dry_run:
        for key, name in (("cudnn", "libcudnn.so.9"), ("cudart", "libcudart.so.13")):
            status = "pass" if libs.get(key) else "fail"
            step.check("real %s found" % name, status, libs.get(key) or
                       "not in pip's nvidia packages (%s) nor CUDA_HOME/lib64" %
                       (", ".join(libs.get("roots", [])) or "package nvidia not importable"))
    res = ctx.run("shim preload", ["python3", "-c", COUNTERS_PROBE],
                  ctx.py_env(preload=True), timeout=30, log="preflight/shim-preload.log")
    if not res.dry:
        loaded = res.ok and "resolved" in res.stdout
        step.check("shim loads when preloaded", "pass" if loaded else "fail",
                   "convbn_get_counters resolved in a preloaded process" if loaded else
                   res.why(4) + " (is a library of the shim missing? see `ldd %s`)" % ctx.rel(ctx.shim))
    check_resolution(ctx, step, os.path.join(ctx.e2e, "differential"),
                     ["libcudnn.so.9", "libcudart.so.13"])
    check_resolution(ctx, step, ctx.bench, ["libcudnn.so.9", "libcudart.so.13"])
    info = torch_info(ctx, step)
    if ctx.dry_run:
        return
    cudnn_h = kit.cudnn_include_dir()
    step.data.update({
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "gpu": gpu,
        "torch": info,
        "libs": {"cudnn_dir": libs.get("cudnn"), "cudart_dir": libs.get("cudart"),
                 "cudnn_headers": cudnn_h,
                 "cudnn_header_version": header_version(os.path.join(cudnn_h, "cudnn_version.h"))
                 if cudnn_h else None},
        "source": git_commit(ctx),
        "build": build_info(ctx),
        "emulation": ctx.emulation,
    })
    step.save()


if __name__ == "__main__":
    kit.main_guard(main)
