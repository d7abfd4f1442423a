"""PortAudio through ``sounddevice``: imported only when a microphone or speakers are used (it
raises OSError at import on a machine without PortAudio), and devices chosen from the config."""

from __future__ import annotations

from typing import Any, Literal

from genxr.xr_runtime.audio.base import AudioError

Kind = Literal["input", "output"]
_INSTEAD = {"input": "or set audio.input=wav with audio.input_wav=FILE to use a recorded voice",
            "output": "or set audio.output=none (the agent's voice is still recorded)"}


def import_sounddevice(field: str) -> Any:
    """The ``sounddevice`` module; :class:`AudioError` naming ``field`` when it or PortAudio is missing."""
    try:
        import sounddevice
    except ImportError as err:
        raise AudioError(f"{field}: the sounddevice package is not installed ({err}); `pip install sounddevice`") from err
    except OSError as err:  # sounddevice loads libportaudio at import
        kind: Kind = "input" if field.startswith("audio.input") else "output"
        raise AudioError(f"{field}: PortAudio is not installed ({err}): `apt install libportaudio2`, "
                         f"{_INSTEAD[kind]}") from err
    return sounddevice


def list_devices(devices: list[dict[str, Any]]) -> str:
    """PortAudio's devices, one per line: index, name, channels, default rate."""
    if not devices:
        return " (none)"
    return "".join(f"\n  {index}: {device['name']} ({device['max_input_channels']} in, "
                   f"{device['max_output_channels']} out, {device['default_samplerate']:g} Hz)"
                   for index, device in enumerate(devices))


def query_devices(sd: Any, field: str) -> list[dict[str, Any]]:
    """Every PortAudio device (a list of sounddevice's device dicts); :class:`AudioError` naming ``field`` if PortAudio fails."""
    try:
        return [dict(device) for device in sd.query_devices()]
    except sd.PortAudioError as err:
        raise AudioError(f"{field}: PortAudio cannot list the audio devices: {err}") from err


def resolve_device(sd: Any, device: int | str | None, kind: Kind, field: str) -> tuple[int, dict[str, Any]]:
    """(index, device dict) of the ``kind`` device ``device`` names: its index (an int, or a string
    of digits), or its name or a unique part of it (case-insensitive); None: PortAudio's default
    device of that kind, else the first one. :class:`AudioError` naming ``field``, the value and
    every device PortAudio sees when there is no such device."""
    devices = query_devices(sd, field)
    channels = f"max_{kind}_channels"
    usable = {index: info for index, info in enumerate(devices) if info[channels] > 0}
    seen = f"PortAudio sees{list_devices(devices)}"
    if not usable:
        raise AudioError(f"{field}={device!r}: there is no audio {kind} device. {seen}\n"
                         f"Connect one (`python -m sounddevice` lists what PortAudio sees), {_INSTEAD[kind]}.")
    if device is None:
        default = sd.default.device[0 if kind == "input" else 1]
        index = default if isinstance(default, int) and default in usable else min(usable)
        return index, usable[index]
    if isinstance(device, int) or device.strip().isdigit():
        index = int(device)
        if index not in usable:
            raise AudioError(f"{field}={device!r}: there is no {kind} device {index}. {seen}\n"
                             f"Choose one of the {kind} devices by index or name, {_INSTEAD[kind]}.")
        return index, usable[index]
    wanted = device.strip().lower()
    exact = [index for index, info in usable.items() if info["name"].lower() == wanted]
    matches = exact or [index for index, info in usable.items() if wanted in info["name"].lower()]
    if len(matches) != 1:
        problem = "names no" if not matches else f"matches {len(matches)}"
        raise AudioError(f"{field}={device!r}: {problem} {kind} devices. {seen}\n"
                         f"Give the index or a part of the name that only one {kind} device has, {_INSTEAD[kind]}.")
    return matches[0], usable[matches[0]]


def open_stream(sd: Any, kind: Kind, device: int, info: dict[str, Any], rate_hz: int, callback: Any,
                field: str) -> Any:
    """A started mono float32 PortAudio stream (``kind`` input: ``sd.InputStream``, output:
    ``sd.OutputStream``) on ``device`` at ``rate_hz`` calling ``callback``; :class:`AudioError`
    naming ``field``, the device and what PortAudio sees if it cannot be opened."""
    stream_type = sd.InputStream if kind == "input" else sd.OutputStream
    try:
        stream = stream_type(device=device, channels=1, samplerate=rate_hz, dtype="float32", callback=callback)
        stream.start()
        return stream
    except sd.PortAudioError as err:
        use = "capture" if kind == "input" else "playback"
        raise AudioError(f"{field}={device!r} ({info['name']!r}): PortAudio cannot open it for {use} at {rate_hz} Hz: "
                         f"{err}. PortAudio sees{list_devices(query_devices(sd, field))}") from err


def close_stream(stream: Any) -> None:
    """Stops and closes a stream from :func:`open_stream`; nothing for None."""
    if stream is not None:
        stream.stop()
        stream.close()
