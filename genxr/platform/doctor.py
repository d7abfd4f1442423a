"""``genxr doctor``: what this machine can run, and what to do about what it cannot.

Each check returns a :class:`Check` with ``ok`` (usable as is), ``detail`` (versions,
providers, devices) and ``hint`` (the next step when not ok). A check never raises: a
missing optional part (TensorRT, a GPU, an OpenXR runtime) is a finding, not a crash.

The OpenXR probe runs in a child process, because the OpenXR loader prints its own errors
to stderr and loads native runtime libraries into the process that asks.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform as stdlib_platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

OPENXR_HINT = (
    "no OpenXR runtime is reachable. Install and start one (SteamVR, Meta Quest Link, WMR, or "
    "Monado on Linux), or point XR_RUNTIME_JSON at a runtime manifest "
    "(e.g. /usr/share/openxr/1/openxr_monado.json). Without a headset, run with the simulated "
    "user: genxr demo (session.source=sim)."
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    version = stdlib_platform.python_version()
    ok = sys.version_info[:2] == (3, 11)
    return Check("python", ok, f"{version} ({sys.executable})", "" if ok else "genxr is built and tested on Python 3.11")


def check_torch() -> Check:
    try:
        import torch
    except ImportError as err:
        return Check("torch", False, f"not importable: {err}", "run `make test` or pip install -e . to install torch==2.13.0")
    detail = (f"{torch.__version__}, intra-op threads {torch.get_num_threads()}, "
              f"inter-op threads {torch.get_num_interop_threads()}, cpu count {os.cpu_count()}")
    ok = torch.__version__.split("+")[0] == "2.13.0"
    return Check("torch", ok, detail, "" if ok else "genxr pins torch==2.13.0")


def check_onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError as err:
        return Check("onnxruntime", False, f"not importable: {err}", "pip install onnxruntime")
    providers = ort.get_available_providers()
    return Check("onnxruntime", "CPUExecutionProvider" in providers, f"{ort.__version__}, providers {providers}")


def check_nvidia_gpu() -> Check:
    try:
        import torch
        cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if cuda else None
    except Exception as err:  # a broken CUDA install raises all kinds of errors; report, do not crash
        return Check("nvidia_gpu", False, f"torch.cuda failed: {err}")
    smi = shutil.which("nvidia-smi")
    if cuda:
        return Check("nvidia_gpu", True, f"{name} (torch.cuda)")
    detail = "no CUDA device visible to torch (torch is the CPU build)" if "+cpu" in torch.__version__ else "no CUDA device"
    if smi:
        detail += f"; nvidia-smi present at {smi}"
    return Check("nvidia_gpu", False, detail, "GPU engines (TensorRT) need an NVIDIA GPU; ONNX Runtime on CPU is used instead")


def check_tensorrt() -> Check:
    version = _version("tensorrt")
    if version is None:
        try:
            import tensorrt  # noqa: F401  (some installs ship it outside pip metadata)
            version = tensorrt.__version__
        except Exception:
            return Check("tensorrt", False, "not installed",
                         "on a machine with an NVIDIA GPU: pip install -e '.[gpu]'; engines fall back to ONNX Runtime on CPU")
    try:
        import onnxruntime as ort
        ort_trt = "TensorrtExecutionProvider" in ort.get_available_providers()
    except ImportError:
        ort_trt = False
    gpu = check_nvidia_gpu().ok
    detail = f"{version}; ONNX Runtime TensorRT provider {'available' if ort_trt else 'absent'}"
    return Check("tensorrt", gpu, detail, "" if gpu else "TensorRT is installed but no NVIDIA GPU is usable")


_OPENXR_PROBE = r"""
import json, xr
out = {"pyopenxr": getattr(xr, "__version__", "?")}
try:
    exts = [e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
            for e in xr.enumerate_instance_extension_properties()]
    out["runtime"] = True
    out["extensions"] = sorted(exts)
except xr.RuntimeUnavailableError as err:
    out["runtime"] = False
    out["error"] = str(err)
except Exception as err:
    out["runtime"] = False
    out["error"] = f"{type(err).__name__}: {err}"
print(json.dumps(out))
"""


def check_openxr(timeout_s: float = 30.0) -> Check:
    if _version("pyopenxr") is None:
        return Check("openxr", False, "pyopenxr not installed", "pip install -e . (pyopenxr bundles the OpenXR loader)")
    env = dict(os.environ, XR_LOADER_DEBUG="none")
    try:
        done = subprocess.run([sys.executable, "-c", _OPENXR_PROBE], capture_output=True, text=True,
                              timeout=timeout_s, env=env, cwd=os.path.expanduser("~"))
        probe = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as err:
        return Check("openxr", False, f"probe failed: {type(err).__name__}: {err}", OPENXR_HINT)
    manifest = os.environ.get("XR_RUNTIME_JSON")
    where = f"XR_RUNTIME_JSON={manifest}" if manifest else "XR_RUNTIME_JSON unset"
    if not probe["runtime"]:
        return Check("openxr", False, f"pyopenxr {probe['pyopenxr']}, {where}: {probe['error']}", OPENXR_HINT)
    exts = probe["extensions"]
    hands = "XR_EXT_hand_tracking" in exts
    detail = (f"pyopenxr {probe['pyopenxr']}, {where}, {len(exts)} extensions; hand tracking "
              f"{'offered' if hands else 'NOT offered'}; headless {'offered' if 'XR_MND_headless' in exts else 'not offered'}")
    return Check("openxr", True, detail, "" if hands else "the runtime offers no XR_EXT_hand_tracking: sessions run head-only")


def check_ray() -> Check:
    version = _version("ray")
    if version is None:
        return Check("ray", False, "not installed", "pip install 'ray[serve]'")
    serve = _version("fastapi") is not None
    return Check("ray", serve, f"{version}, Serve {'available' if serve else 'missing (install ray[serve])'}")


CHECKS = (check_python, check_torch, check_onnxruntime, check_nvidia_gpu, check_tensorrt, check_openxr, check_ray)


def run_checks() -> list[Check]:
    return [check() for check in CHECKS]


def as_json(checks: list[Check]) -> str:
    return json.dumps({"checks": [asdict(c) for c in checks]}, indent=2)
