"""The service on the shipped checkpoints (loaded only, never trained here)."""

from pathlib import Path

import numpy as np

from genxr.components.sim.user import ScriptedUser
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from genxr.components.worldmodel.service import (
    MODEL_NAME,
    StudentWorld,
    StudentWorldConfig,
)
from genxr.platform.clock import ManualClock
from genxr.platform.messages import Pose, WorldFrameRequest


def _frames(n: int, behaviour: str = "press_button"):
    return [step.frame for step in ScriptedUser(behaviour, seed=3, clock=ManualClock()).steps(n)]


def test_shipped_checkpoints_load_and_are_small():
    for name in ("codec", "teacher", "teacher_head_only", "student_ode", "student"):
        _, config = load_model(CHECKPOINT_ROOT / name)
        assert config["summary"]["preset"] == "cpu"
    import genxr

    # every shipped checkpoint of genxr together (world models and avatar): at most 40 MB (issue 16)
    total = sum(p.stat().st_size for p in Path(genxr.__file__).parent.rglob("checkpoints/**/*") if p.is_file())
    assert total <= 40e6


def test_student_world_answers_requests_and_recovers_from_a_teleport():
    world = StudentWorld()
    frames = _frames(24)
    images = []
    for k in range(0, 24, 3):
        reply = world(WorldFrameRequest(session_id="s", request_id=k, tracking=frames[k:k + 3]))
        assert reply.model == MODEL_NAME and reply.image.shape == (64, 64, 3) and reply.frame_id == frames[k + 2].frame_id
        images.append(reply.image)
    assert world.resets == 1 and world.stream.frames_generated > 0
    assert not all(np.array_equal(images[0], image) for image in images[1:])
    last = frames[-1]
    far = Pose(position=(last.head.position[0] + 3.0, *last.head.position[1:]), orientation=last.head.orientation)
    jumped = last.model_copy(update={"frame_id": last.frame_id + 1, "sample_time_ns": last.sample_time_ns + 11_000_000,
                                     "predicted_display_time_ns": last.predicted_display_time_ns + 11_000_000, "head": far})
    reply = world(WorldFrameRequest(session_id="s", request_id=99, tracking=[jumped]))
    assert world.resets == 2 and reply.image.shape == (64, 64, 3)


def test_lost_hands_are_an_input():
    world = StudentWorld()
    frames = [f.model_copy(update={"left_hand": None, "right_hand": None}) for f in _frames(12)]
    for k in range(0, 12, 4):
        reply = world(WorldFrameRequest(session_id="lost", request_id=k, tracking=frames[k:k + 4]))
        assert reply.image.dtype == np.uint8


def test_student_world_is_deterministic_by_default_and_samples_when_asked():
    frames = _frames(12)

    def session(noise_seed: int, config: StudentWorldConfig | None = None) -> list[np.ndarray]:
        world = StudentWorld(seed=0, config=config)  # the seed is also the room's: keep it, reseed only the noise
        world.stream.generator.manual_seed(noise_seed)
        return [world(WorldFrameRequest(session_id="d", request_id=k, tracking=frames[k:k + 3])).image
                for k in range(0, 12, 3)]

    assert StudentWorldConfig().noise_scale == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(session(1), session(2))), "noise 0: the noise seed changes nothing"
    sampled = StudentWorldConfig(noise_scale=1.0)
    assert not all(np.array_equal(a, b) for a, b in zip(session(1, sampled)[1:], session(2, sampled)[1:]))
