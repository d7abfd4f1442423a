"""A real conversation for the avatar: the user's microphone and the agent's voice, on the session clock.

The avatar conditions on dyadic audio - the user's speech and the agent's. The frame loop asks
a :class:`~genxr.xr_runtime.audio.base.ConversationSource` for both speakers' samples of each
span of session time (``chunks(start_ns, end_ns)``) and sends them with every avatar request.
The config's ``audio`` section chooses the source (:func:`make_conversation`):

* ``scripted`` (the default): the conversation simulator's speech (:class:`ScriptedConversation`);
* ``live``: :class:`LiveConversation` - the user's speech from a PortAudio microphone
  (:class:`~genxr.xr_runtime.audio.inputs.MicrophoneInput`) or from a WAV file played in real
  time (:class:`~genxr.xr_runtime.audio.inputs.WavInput`), and the agent's lines spoken by
  espeak-ng or read from WAVs (:class:`~genxr.xr_runtime.audio.voice.AgentVoice`), played to
  the user through PortAudio (:class:`~genxr.xr_runtime.audio.voice.SpeakerPlayer`) or
  nowhere (:class:`~genxr.xr_runtime.audio.voice.NullPlayer`). The session records both
  speakers as ``audio/user.wav`` and ``audio/agent.wav`` (:class:`RecordedConversation`).

Everything is handed out at the avatar's rate, :data:`MODEL_RATE_HZ` (16 kHz); devices at other
rates are resampled. ``sounddevice`` (and so PortAudio) is imported only when a microphone or
speakers are used.
"""

from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError, ConversationSource, UserInput
from genxr.xr_runtime.audio.conversation import (
    AUDIO_FOLDER,
    LiveConversation,
    RecordedConversation,
    ScriptedConversation,
    make_conversation,
    open_conversation,
)

__all__ = ["AUDIO_FOLDER", "MODEL_RATE_HZ", "AudioError", "ConversationSource", "LiveConversation",
           "RecordedConversation", "ScriptedConversation", "UserInput", "make_conversation", "open_conversation"]
