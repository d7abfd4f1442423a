"""The avatar service on an engine: the same motion as the torch service over several chunks
(within the float drift the export reports), the engine that ran named, torch as it was.

The exported step lives in the default ONNX cache folder: exporting it takes about a minute
(its 40-chunk parity rollout), and a Serve avatar replica on this machine shares the file."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar.service import AvatarService, ConversationAudio
from genxr.deploy.serving.avatar import EngineAvatarService
from genxr.platform.messages import AvatarRequest, Pose

START_NS = 2_000_000_000
MOTION_TOLERANCE = 1e-3
"""6D rotations (unitless) and root translation (m): the export's 40-chunk free-running drift is ~3e-4."""


def requests(count: int, stride: int):
    audio = ConversationAudio(START_NS, seed=2)
    chunk_ns = stride * 1_000_000_000 // 30
    out = []
    for k in range(count):
        user, agent = audio.chunks(START_NS + k * chunk_ns, START_NS + (k + 1) * chunk_ns)
        out.append(AvatarRequest(session_id="avatar", request_id=k, time_ns=START_NS + (k + 1) * chunk_ns,
                                 user_head=Pose(position=(0.1 * np.sin(k), 1.6, 1.2)), user_audio=user,
                                 agent_audio=agent))
    return out


def test_the_onnxruntime_avatar_moves_like_the_torch_avatar():
    served, reference = EngineAvatarService(START_NS, engine="onnxruntime", seed=4), AvatarService(START_NS, seed=4)
    assert served.rate_hz == reference.rate_hz
    for request in requests(6, reference.stream.stride):
        motion, expected = served(request), reference(request)
        assert motion.start_time_ns == expected.start_time_ns and motion.request_id == request.request_id
        np.testing.assert_allclose(motion.rotations_6d, expected.rotations_6d, atol=MOTION_TOLERANCE)
        np.testing.assert_allclose(motion.root_translation, expected.root_translation, atol=MOTION_TOLERANCE)
    assert served.describe() == {"model": "avatar-stream@onnxruntime[CPUExecutionProvider]",
                                 "engine": "onnxruntime[CPUExecutionProvider]", "rate_hz": reference.rate_hz,
                                 "generator": "generator", "guidance_scale": 1.0}


def test_the_spatial_ablation_and_the_gaze_guidance_are_what_the_service_runs():
    served = EngineAvatarService(START_NS, engine="onnxruntime", seed=4, guidance_scale=2.0,
                                 generator="generator_no_user")
    assert served.describe()["model"] == "avatar-stream-no-user@onnxruntime[CPUExecutionProvider]"
    assert (served.stream.guidance_scale, served.describe()["generator"]) == (2.0, "generator_no_user")
    request = requests(1, served.rate_hz and 4)[0]
    assert served(request).request_id == 0
    with pytest.raises(ValueError, match="avatar generator must be one of generator, generator_no_user, got 'vae'"):
        EngineAvatarService(START_NS, engine="onnxruntime", generator="vae")


def test_the_torch_engine_is_the_plain_avatar_stream():
    from genxr.components.avatar.stream import AvatarStream

    service = EngineAvatarService(START_NS, engine="torch")
    assert type(service.stream) is AvatarStream and service.describe()["engine"] == "torch"


def test_an_unknown_avatar_engine_is_refused_naming_it():
    with pytest.raises(ValueError, match="got 'openvino'"):
        EngineAvatarService(START_NS, engine="openvino")
