"""``genxr doctor``: what this machine can run, and what to do about what it cannot.

Each check returns a :class:`Check` with ``ok`` (usable as is), ``detail`` (versions,
providers, devices) and ``hint`` (the next step when not ok). A check never raises: a
missing optional part (TensorRT, a GPU, an OpenXR runtime) is a finding, not a crash.

The OpenXR probe runs in a child process, because the OpenXR loader prints its own errors
to stderr and loads native runtime libraries into the process that asks. It does not stop at
the loader's extension list (which a runtime gives with no headset and no service running):
it creates an instance and gets the head-mounted system, and asks the system whether it
tracks hands.
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


OPENXR_SERVICE_HINT = (
    "an OpenXR runtime is installed but gives no headset system: start its service (monado-service, "
    "SteamVR) and connect and switch on the headset. Without a headset, run with the simulated user: "
    "genxr demo (session.source=sim)."
)


def openxr_probe(xr) -> dict:
    """What an OpenXR runtime really gives, through ``xr`` (pyopenxr's module, or a stand-in with its
    names): its extensions, then an instance (API 1.0) and the head-mounted system - which fails
    (``FormFactorUnavailableError``, ``RuntimeFailureError``) when no headset or runtime service is
    there, although the loader lists extensions - and whether that system tracks hands
    (``XrSystemHandTrackingPropertiesEXT``: the extension may be offered without it). The
    instance is destroyed again. JSON-able; never raises."""
    import ctypes

    out: dict = {"pyopenxr": str(getattr(xr, "__version__", "?")), "runtime": False, "system": False}
    try:
        names = [e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
                 for e in xr.enumerate_instance_extension_properties()]
    except Exception as err:
        out["error"] = f"xrEnumerateInstanceExtensionProperties: {type(err).__name__}: {' '.join(str(err).split())}"
        return out
    out["runtime"], out["extensions"] = True, sorted(names)
    step, instance = "xrCreateInstance", None
    try:
        enabled = [name for name in ("XR_EXT_hand_tracking",) if name in names]
        instance = xr.create_instance(xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name="genxr doctor", api_version=xr.Version(1, 0, 0)),
            enabled_extension_names=enabled))
        step = "xrGetInstanceProperties"
        runtime_name = xr.get_instance_properties(instance).runtime_name
        out["runtime_name"] = runtime_name.decode() if isinstance(runtime_name, bytes) else str(runtime_name)
        step = "xrGetSystem"
        system_id = xr.get_system(instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        step = "xrGetSystemProperties"
        hand_properties = xr.SystemHandTrackingPropertiesEXT()
        properties = xr.SystemProperties(next=hand_properties) if enabled else xr.SystemProperties()
        get_properties = ctypes.cast(xr.get_instance_proc_addr(instance, "xrGetSystemProperties"),
                                     xr.PFN_xrGetSystemProperties)
        error = xr.check_result(xr.Result(get_properties(instance, system_id, ctypes.byref(properties))))
        if error.is_exception():
            raise error
        system_name = properties.system_name
        out["system"] = True
        out["system_name"] = system_name.decode() if isinstance(system_name, bytes) else str(system_name)
        out["hand_tracking"] = bool(enabled) and bool(hand_properties.supports_hand_tracking)
    except Exception as err:
        out["error"] = f"{step}: {type(err).__name__}: {' '.join(str(err).split())}"
    finally:
        if instance is not None:
            try:
                xr.destroy_instance(instance)
            except Exception:  # noqa: S110 - the probe reports what it found, not the teardown
                pass
    return out


_OPENXR_PROBE = r"""
import json, xr
from genxr.platform.doctor import openxr_probe
print(json.dumps(openxr_probe(xr)))
"""


def openxr_check(probe: dict, where: str) -> Check:
    """The ``openxr`` check from :func:`openxr_probe`'s findings (``where``: how the runtime was found)."""
    head = f"pyopenxr {probe['pyopenxr']}, {where}"
    if not probe["runtime"]:
        return Check("openxr", False, f"{head}: {probe['error']}", OPENXR_HINT)
    exts = probe["extensions"]
    if not probe["system"]:
        return Check("openxr", False, f"{head}, {len(exts)} extensions, runtime {probe.get('runtime_name', '?')}; "
                                      f"no headset system: {probe['error']}", OPENXR_SERVICE_HINT)
    offered = "XR_EXT_hand_tracking" in exts
    hands = probe.get("hand_tracking", False)
    hand_text = "supported" if hands else ("offered (XR_EXT_hand_tracking) but NOT supported by the system"
                                           if offered else "NOT offered")
    detail = (f"{head}, runtime {probe.get('runtime_name', '?')}, system {probe.get('system_name', '?')}, "
              f"{len(exts)} extensions; hand tracking {hand_text}; headless "
              f"{'offered' if 'XR_MND_headless' in exts else 'not offered'}")
    return Check("openxr", True, detail, "" if hands else "the system tracks no hands: sessions run head-only")


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
    return openxr_check(probe, where)


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
