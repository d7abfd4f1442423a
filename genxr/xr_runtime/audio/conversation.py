"""The conversation the avatar hears: the simulator's script (:class:`ScriptedConversation`), or a
live one (:class:`LiveConversation`: the user's microphone or a WAV, and the agent's voice,
played to the user), recorded into the session as ``audio/user.wav`` and ``audio/agent.wav``
(:class:`RecordedConversation`)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Any, Self

from genxr.components.avatar.service import ConversationAudio
from genxr.platform.clock import Clock
from genxr.platform.config import GenXRConfig
from genxr.platform.messages import AudioChunk
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, ConversationSource, UserInput, index_at
from genxr.xr_runtime.audio.voice import AgentVoice, AudioPlayer
from genxr.xr_runtime.audio.wav import WavTrackWriter

AUDIO_FOLDER = "audio"
SPEAKERS = ("user", "agent")


class ScriptedConversation(ConversationAudio):
    """The conversation simulator's speech of both speakers from ``start_time_ns`` on (``audio.conversation=scripted``,
    the default): :class:`~genxr.components.avatar.service.ConversationAudio` as a conversation source."""


class LiveConversation:
    """The user's speech from ``user_input`` and the agent's from ``agent_voice``, which ``player``
    plays to the user. As a context manager: on entering, the conversation starts
    (:attr:`start_time_ns` = now on ``clock``: the agent's line times count from here), the
    input captures and the player plays; on leaving both stop."""

    sample_rate_hz = MODEL_RATE_HZ

    def __init__(self, user_input: UserInput, agent_voice: AgentVoice, player: AudioPlayer, clock: Clock) -> None:
        self.user_input, self.agent_voice, self.player, self.clock = user_input, agent_voice, player, clock
        self.start_time_ns: int | None = None
        self._open = ExitStack()

    def __enter__(self) -> Self:
        self.start_time_ns = self.clock.now_ns()
        with ExitStack() as opening:
            self.user_input.open(self.start_time_ns)
            opening.callback(self.user_input.close)
            self.agent_voice.open(self.start_time_ns)
            self.player.open(self.agent_voice)
            opening.callback(self.player.close)
            self._open = opening.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._open.close()

    def chunks(self, start_ns: int, end_ns: int) -> list[AudioChunk]:
        """The user's chunk (what the input captured, see :meth:`UserInput.read`) and the agent's
        (its voice in [start_ns, end_ns)), each left out when it has no samples."""
        if self.start_time_ns is None:
            return []
        start_ns = max(start_ns, self.start_time_ns)
        if end_ns <= start_ns:
            return []
        found = [self.user_input.read(start_ns, end_ns), self.agent_voice.chunk(start_ns, end_ns)]
        return [chunk for chunk in found if chunk is not None]

    def describe(self) -> dict[str, Any]:
        """What the conversation is made of, for the session's manifest."""
        return {"conversation": "live", "input": self.user_input.describe(), "output": self.player.describe(),
                "agent_lines": self.agent_voice.schedule}


class RecordedConversation:
    """``conversation`` with both speakers recorded as 16-bit PCM WAVs at the model's rate into
    ``folder`` (``user.wav``, ``agent.wav``), sample 0 at the conversation's start: what each
    :meth:`chunks` hands out, what falls between the spans asked for, and on leaving everything
    up to that moment, so both files are the same length, complete and closed however the
    session ends. ``metadata["audio"]`` (the session manifest's) says what was recorded."""

    def __init__(self, conversation: LiveConversation, folder: str | os.PathLike[str], clock: Clock,
                 metadata: dict[str, Any] | None = None) -> None:
        self.conversation, self.folder, self.clock = conversation, Path(folder), clock
        self.metadata = metadata if metadata is not None else {}
        self.tracks: dict[str, WavTrackWriter] = {}
        self._recorded_until: int | None = None
        self._files = ExitStack()

    @property
    def start_time_ns(self) -> int | None:
        return self.conversation.start_time_ns

    @property
    def sample_rate_hz(self) -> int:
        return self.conversation.sample_rate_hz

    def __enter__(self) -> Self:
        with ExitStack() as opening:
            opening.enter_context(self.conversation)
            start = self.conversation.start_time_ns
            for speaker in SPEAKERS:
                self.tracks[speaker] = opening.enter_context(
                    WavTrackWriter(self.folder / f"{speaker}.wav", start, MODEL_RATE_HZ))
            self._recorded_until = start
            self._files = opening.pop_all()
        self.metadata["audio"] = {**self.conversation.describe(), "sample_rate_hz": MODEL_RATE_HZ,
                                  "start_time_ns": start, "files": [self._name(speaker) for speaker in SPEAKERS]}
        return self

    def _name(self, speaker: str) -> str:
        return f"{self.folder.name}/{speaker}.wav"

    def _record(self, chunks: list[AudioChunk]) -> None:
        for chunk in chunks:
            self.tracks[chunk.speaker].write(chunk)

    def chunks(self, start_ns: int, end_ns: int) -> list[AudioChunk]:
        """The conversation's chunks for [start_ns, end_ns), recorded (with any span skipped before it)."""
        if self._recorded_until is not None and start_ns > self._recorded_until:
            self._record(self.conversation.chunks(self._recorded_until, start_ns))
        found = self.conversation.chunks(start_ns, end_ns)
        self._record(found)
        if self._recorded_until is not None:
            self._recorded_until = max(self._recorded_until, end_ns)
        return found

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._recorded_until is None:
            return
        end_ns, start = self.clock.now_ns(), self.conversation.start_time_ns
        try:
            with self._files:  # closes the files and the conversation whatever happens below
                self._record(self.conversation.chunks(self._recorded_until, end_ns))
                samples = index_at(end_ns, start, MODEL_RATE_HZ)
                for track in self.tracks.values():
                    track.pad_to(samples)
                self.metadata["audio"]["seconds"] = max(track.samples_written for track in self.tracks.values()) \
                    / MODEL_RATE_HZ
        except OSError:
            if exc_type is None:
                raise  # otherwise the session's own error is the one to see
        finally:
            self._recorded_until = None


def make_conversation(config: GenXRConfig, start_time_ns: int, clock: Clock) -> ConversationSource:
    """The conversation ``config.audio`` names: scripted from ``start_time_ns`` (the default), or
    live (its parts made now - devices chosen, lines synthesised - so a problem stops the session
    before it starts; it begins when entered). :class:`~genxr.xr_runtime.audio.base.AudioError`
    naming the config field when a part cannot be made."""
    audio = config.audio
    if audio.conversation == "scripted":
        return ScriptedConversation(start_time_ns, seed=config.session.seed)
    from genxr.xr_runtime.audio.inputs import MicrophoneInput, WavInput
    from genxr.xr_runtime.audio.voice import NullPlayer, SpeakerPlayer

    user: UserInput = WavInput(audio.input_wav, clock) if audio.input == "wav" \
        else MicrophoneInput(audio.input_device, clock)
    voice = AgentVoice([(line.at_s, line.text if line.text is not None else line.wav) for line in audio.agent_lines],
                       voice=audio.agent_voice)
    player: AudioPlayer = NullPlayer() if audio.output == "none" else SpeakerPlayer(audio.output_device, clock)
    return LiveConversation(user, voice, player, clock)


def open_conversation(conversation: ConversationSource, session_folder: str | os.PathLike[str], clock: Clock,
                      metadata: dict[str, Any]) -> AbstractContextManager[ConversationSource]:
    """A context manager yielding the source to hand the frame loop: a live ``conversation``
    started and recorded into ``session_folder/audio/`` (:class:`RecordedConversation`, which
    sets ``metadata["audio"]``); a scripted one as it is."""
    if isinstance(conversation, LiveConversation):
        return RecordedConversation(conversation, Path(session_folder) / AUDIO_FOLDER, clock, metadata)
    return nullcontext(conversation)
