"""Run configuration: pydantic-settings with YAML presets and ``GENXR_*`` environment overrides.

Precedence, highest first:

1. keyword overrides passed to :func:`load_config` (what CLI flags set),
2. environment variables ``GENXR_<SECTION>__<FIELD>``, e.g.
   ``GENXR_SESSION__DISPLAY_RATE_HZ=72`` or ``GENXR_BUS__BACKEND=ray``,
3. a user YAML file (``--config my.yaml``),
4. a named preset shipped in ``genxr/platform/presets/`` (``default``, ``headset``,
   ``quick``); presets other than ``default`` are layered on top of ``default``,
5. the defaults written below.

Invalid configuration fails at start with :class:`ConfigError`, whose message names each
offending field (dotted path), the value it got and what is allowed. A ``GENXR_`` variable
that names no section (``GENXR_SESION__SEED``: pydantic-settings would silently ignore it)
is reported with a :class:`ConfigWarning` on stderr naming it and the known sections; a
misspelt field of a known section (``GENXR_SESSION__SEDD``) is a :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

PRESET_DIR = Path(__file__).parent / "presets"

HudCorner = Literal["top_left", "top_right", "bottom_left", "bottom_right"]
HudItem = Literal["frame_time", "deadline_misses", "motion_to_photon", "content_age", "world_hz", "avatar_hz",
                  "markers"]
"""Lines of the latency HUD (:mod:`genxr.xr_runtime.hud`); ``markers`` = STALE / TRACKING LOST."""


DEFAULT_WORLD_FOLD = 0.2
"""Default ``session.world_fold`` (and ``genxr serve --fold``): the largest ratio measured (0.2, 0.25, 0.3,
0.5) whose held-out PSNR loss against the unfolded student is <= 0.5 dB in ``genxr bench compress`` on both
its default and a smaller evaluation: 0.39 / 0.42 dB at 0.2; 0.25 is borderline (0.48 / 0.52 dB), 0.3 loses
0.56 / 0.62 dB (see docs/deploy.md, "The served student")."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionConfig(_Section):
    """What drives a session and for how long."""

    source: Literal["sim", "openxr", "replay"] = Field("sim", description="tracking source")
    display_rate_hz: float = Field(90.0, gt=0, le=240, description="display refresh rate when genxr paces the loop")
    duration_s: float = Field(10.0, gt=0, allow_inf_nan=False, description="session length, seconds (finite)")
    warmup_s: float = Field(0.0, ge=0, allow_inf_nan=False,
                            description="the session's first seconds, run, shown and recorded as the rest but left "
                                        "out of metrics.json's percentiles, rates and miss rate (its warmup_frames "
                                        "says how many frames); the models answer one warm-up request before any")
    seed: int = Field(0, ge=0, description="seed of the simulated user and scene")
    world: Literal["auto", "student", "student_head_only", "pixel", "ground_truth", "frozen"] = Field(
        "auto", description="world service: the world-model student (hand-conditioned), its head-only ablation "
                            "(camera conditioning only), world model v2 (pixel: a pixel-space U-Net, eager torch, "
                            "not folded), the simulator's ground truth, frozen (the room rendered once, never "
                            "updated), or auto (the student when its checkpoint ships)")
    world_fold: float | None = Field(
        DEFAULT_WORLD_FOLD, ge=0, lt=1, allow_inf_nan=False,
        description="fraction of the student's compressible channels folded away before it runs (genxr.compression."
                    "fold; in-process and on the Ray Serve replica alike); 0 or null: the student as shipped")
    world_rate_hz: float = Field(30.0, gt=0, le=240, description="most world-model requests per second")
    avatar: bool = Field(True, description="run the conversational avatar when its checkpoint is available")
    avatar_guidance_scale: float = Field(1.0, ge=0.0, le=4.0, allow_inf_nan=False,
                                         description="the avatar's eye-contact (gaze) guidance scale: 0 leaves gaze "
                                                     "to the model, larger looks at the user more (classifier-free "
                                                     "guidance on the gaze score)")
    avatar_spatial: bool = Field(True, description="false: the spatial ablation, the avatar's generator trained "
                                                   "without the user's position (it neither turns to nor looks at "
                                                   "the user)")
    avatar_checkpoint: Path | None = Field(None, description="avatar checkpoint directory (default: the shipped one)")
    replay_path: Path | None = Field(None, description="recorded session to play back (source=replay)")
    openxr_headless: bool = Field(False, description="source=openxr: a headless session (tracking only, no images "
                                                     "on the headset, no GL/EGL needed) where the runtime offers "
                                                     "XR_MND_headless (Monado); otherwise a graphics session")

    @model_validator(mode="after")
    def _replay_needs_path(self) -> SessionConfig:
        if self.source == "replay" and self.replay_path is None:
            raise ValueError("source 'replay' needs session.replay_path (the recorded session directory)")
        return self


class DisplayConfig(_Section):
    """The display the compositor renders for (one eye; mono)."""

    width: int = Field(256, ge=16, le=4096, description="pixels")
    height: int = Field(256, ge=16, le=4096, description="pixels")
    vertical_fov_deg: float = Field(90.0, gt=0, lt=180, description="vertical field of view, degrees")
    stale_after_ms: float = Field(500.0, gt=0, description="content older than this is marked stale")
    added_latency_ms: float = Field(0.0, ge=0, le=1000, allow_inf_nan=False,
                                    description="study condition 'display latency added': every display frame is "
                                                "re-projected (and the models asked) with the tracking sampled this "
                                                "many ms before the newest, as if motion-to-photon were that much "
                                                "longer; the recording keeps the tracking as sampled. 0: none")
    hud: bool = Field(False, description="draw the latency HUD (frame time, misses, motion-to-photon, content age, "
                                         "update rates, STALE / TRACKING LOST) into every display frame")
    hud_corner: HudCorner = Field("top_left", description="where the HUD sits in the frame")
    hud_items: tuple[HudItem, ...] = Field(get_args(HudItem), min_length=1, description="the HUD's lines, in order")
    preview: bool = Field(False, description="show the display frames in a window on this machine's screen "
                                             "(needs an X11 or Wayland display)")
    preview_max_hz: float | None = Field(None, gt=0, le=1000, description="most preview window redraws per second "
                                                                          "(None: as many as the display shows)")


class BusConfig(_Section):
    """Which bus backend carries messages between the loop and the models."""

    backend: Literal["inproc", "ray"] = Field("inproc", description="in-process threads or Ray Serve handles")
    workers: int = Field(4, ge=1, le=64, description="handler threads of the in-process backend")
    handler_nice: int = Field(10, ge=0, le=19, description="how much lower model handlers run than the frame loop")
    request_timeout_ms: float = Field(250.0, gt=0, allow_inf_nan=False, description="deadline of one model request, ms")
    ray_address: str | None = Field(None, description="existing Ray cluster to join (ray start --head)")


class TracingConfig(_Section):
    """Span recording."""

    enabled: bool = True
    max_spans: int = Field(10_000, ge=1, description="recent spans kept in memory (oldest out first); a session "
                                                     "streams every span to spans.jsonl and computes trace.json "
                                                     "and the stage percentiles from that file")


class RuntimeConfig(_Section):
    """Process-wide compute settings."""

    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads; None keeps torch's default")


def _audio_device(value: int | str | None) -> int | str | None:
    if isinstance(value, int) and value < 0 or isinstance(value, str) and not 0 < len(value.strip()) <= 200:
        raise ValueError(f"a device is its index (>= 0) or (part of) its name (1-200 characters), got {value!r}")
    return value


AudioDevice = Annotated[int | str | None, AfterValidator(_audio_device)]
"""A PortAudio device: its index, or (part of) its name; None: the system's default device."""


class AgentLine(_Section):
    """One line the agent says, from ``at_s`` seconds after the conversation starts: ``text``
    spoken by espeak-ng, or a recorded ``wav`` file."""

    at_s: float = Field(ge=0, le=86_400, allow_inf_nan=False, description="start, seconds after the conversation "
                                                                           "starts (a line starts no earlier than "
                                                                           "the previous one ends)")
    text: str | None = Field(None, min_length=1, max_length=2000, description="what espeak-ng says")
    wav: Path | None = Field(None, description="a recorded line (PCM or float WAV, any rate; stereo is mixed down)")

    @model_validator(mode="after")
    def _text_or_wav(self) -> AgentLine:
        if (self.text is None) == (self.wav is None):
            raise ValueError("an agent line has exactly one of text (spoken by espeak-ng) or wav (a recorded file), "
                             f"got text={self.text!r}, wav={None if self.wav is None else str(self.wav)!r}")
        return self


class AudioConfig(_Section):
    """The conversation the avatar hears (:mod:`genxr.xr_runtime.audio`): the simulator's script,
    or a live one - the user's microphone (or a WAV file) and the agent's voice."""

    conversation: Literal["scripted", "live"] = Field(
        "scripted", description="scripted: the conversation simulator's speech of both speakers; live: the user's "
                                "microphone (or input_wav) and the agent's lines, recorded into the session's audio/")
    input: Literal["microphone", "wav"] = Field("microphone", description="the user's speech (conversation=live): "
                                                                          "a PortAudio microphone, or input_wav played "
                                                                          "in real time")
    input_device: AudioDevice = Field(None, description="input=microphone: PortAudio input device, index or (part "
                                                        "of) its name; None: the default (`python -m sounddevice` "
                                                        "lists them)")
    input_wav: Path | None = Field(None, description="input=wav: the user's speech as a WAV file")
    agent_lines: tuple[AgentLine, ...] = Field((), max_length=1000, description="what the agent says and when "
                                                                                "(silence between lines)")
    agent_voice: str = Field("en", pattern=r"^[A-Za-z0-9_+-]{1,40}$", description="espeak-ng voice of text lines "
                                                                                  "(`espeak-ng --voices` lists them)")
    output: Literal["speakers", "none"] = Field("speakers", description="where the agent's voice is played to the "
                                                                        "user: a PortAudio output device, or nowhere "
                                                                        "(headless; it is still recorded)")
    output_device: AudioDevice = Field(None, description="output=speakers: PortAudio output device, index or (part "
                                                         "of) its name; None: the default")

    @model_validator(mode="after")
    def _wav_input_needs_file(self) -> AudioConfig:
        if self.conversation == "live" and self.input == "wav" and self.input_wav is None:
            raise ValueError("audio.input = 'wav' needs audio.input_wav (the user's speech as a WAV file)")
        return self


_layers: ContextVar[list[Path]] = ContextVar("genxr_config_layers", default=[])


class GenXRConfig(BaseSettings):
    """The whole configuration of one genxr run."""

    model_config = SettingsConfigDict(env_prefix="GENXR_", env_nested_delimiter="__", extra="forbid", frozen=True)

    session: SessionConfig = SessionConfig()
    display: DisplayConfig = DisplayConfig()
    bus: BusConfig = BusConfig()
    tracing: TracingConfig = TracingConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    audio: AudioConfig = AudioConfig()
    output_dir: Path = Field(Path("runs"), description="where sessions, traces and reports are written")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_files = _layers.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_files:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_files, deep_merge=True))
        return tuple(sources)


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names every bad field and its value."""


class ConfigWarning(UserWarning):
    """Configuration that is ignored, e.g. an environment variable naming no section."""


ENV_PREFIX = "GENXR_"
OTHER_ENV_VARS = frozenset({"GENXR_CACHE", "GENXR_MULTINODE_TEST"})
"""``GENXR_`` variables genxr reads that are not configuration (the download cache, a test switch)."""


def unknown_env_vars(environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, what is wrong) for each ``GENXR_`` variable that sets no configuration: its first
    part, before ``__``, is not a section (or ``output_dir``). Field names of known sections are
    checked by validation; variables genxr reads otherwise (:data:`OTHER_ENV_VARS`) are left alone."""
    environ = os.environ if environ is None else environ
    known = list(GenXRConfig.model_fields)
    found = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in OTHER_ENV_VARS:
            continue
        section = name[len(ENV_PREFIX):].split("__")[0].lower()
        if section in known:
            continue
        close = difflib.get_close_matches(section, known, n=1)
        found.append((name, f"no section {section!r}" + (f" (did you mean {close[0]!r}?)" if close else "")))
    return found


def _warn_unknown_env_vars() -> None:
    for name, problem in unknown_env_vars():
        warnings.warn(f"environment variable {name} is ignored: {problem}; the sections are "
                      f"{', '.join(GenXRConfig.model_fields)} (GENXR_<SECTION>__<FIELD>)", ConfigWarning, stacklevel=3)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _describe(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"  {where}{shown}: {item['msg']}")
    return "\n".join(lines)


def load_config(preset: str = "default", file: str | Path | None = None, **overrides: Any) -> GenXRConfig:
    """The configuration from preset, file, environment and ``overrides`` (module docstring).

    ``overrides`` take section dicts, e.g. ``load_config(session={"duration_s": 2})``.
    Raises :class:`ConfigError` naming the field and value for anything invalid,
    including an unknown preset or a missing or malformed YAML file.
    """
    if preset not in available_presets():
        raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(available_presets())}")
    layers = [PRESET_DIR / "default.yaml"]
    if preset != "default":
        layers.append(PRESET_DIR / f"{preset}.yaml")
    if file is not None:
        file = Path(file)
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} does not exist")
        layers.append(file)
    _warn_unknown_env_vars()
    token = _layers.set(layers)
    try:
        return GenXRConfig(**overrides)
    except ValidationError as err:
        raise ConfigError(f"invalid genxr configuration (preset {preset!r}"
                          f"{'' if file is None else f', file {str(file)!r}'}):\n{_describe(err)}") from None
    except Exception as err:  # YAML syntax errors surface from pydantic-settings as yaml.YAMLError
        raise ConfigError(f"cannot read configuration: {type(err).__name__}: {err}") from err
    finally:
        _layers.reset(token)
