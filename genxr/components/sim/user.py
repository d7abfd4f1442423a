"""The scripted user: the simulated tracking source of a session, with ground truth per frame.

``ScriptedUser(behaviour="press_button+wave", seed=7)`` builds the seeded room and user
(eye height, hand size), scripts the behaviours onto a timeline and then, frame by frame
at ``rate_hz``, poses the true head and hands (plus idle sway), steps the scene's contact
logic with the true hands, and reports them through the tracking model as a
:class:`~genxr.platform.messages.TrackingFrame`. ``steps()`` yields every frame with its
ground truth as fast as it can; ``frames()`` paces the frames on the clock, as a live
tracking source does. The same seed, behaviour and rate give the same episode.

Times: frame k is sampled at ``start_ns + round(k * NS_PER_S / rate_hz)`` on the clock
(``start_ns`` is read from the clock when iteration starts) and its
``predicted_display_time_ns`` is that plus ``latency_ns`` (default two frame periods, the
usual render-ahead of an XR runtime).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genxr.components.sim.behaviours import Actor, parse_behaviours, script_episode
from genxr.components.sim.geometry import euler_yxz
from genxr.components.sim.hand import HandModel, HandModelConfig, HandPose
from genxr.components.sim.layout import SceneConfig, SceneState
from genxr.components.sim.scene import Scene
from genxr.components.sim.tracking import Tracker, TrackingNoise
from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import TrackingFrame
from genxr.platform.units import NS_PER_S

SIDES = ("left", "right")


@dataclass(frozen=True)
class SimStep:
    """One frame of an episode.

    ``frame``: what the tracking source reports. Ground truth: ``head`` (4, 4) head-to-world
    (the camera's view pose), ``hands`` the true left and right :class:`HandPose`, ``state``
    the objects after this frame's contacts, ``behaviour`` the behaviour running, ``time_s``
    seconds since the episode started.
    """

    frame: TrackingFrame
    head: np.ndarray
    hands: tuple[HandPose, HandPose]
    state: SceneState
    behaviour: str
    time_s: float


def _sway(rng: np.random.Generator, amplitude: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Idle sway: per axis two sinusoids of 0.1-0.4 Hz with random phases, amplitudes ``amplitude`` (D,)."""
    shape = (2, len(amplitude))
    return rng.uniform(0.1, 0.4, shape), rng.uniform(0, 2 * np.pi, shape), amplitude * rng.uniform(0.5, 1.0, shape)


class ScriptedUser:
    """A seeded user performing ``behaviour`` in a seeded room, emitting TrackingFrames at ``rate_hz``."""

    def __init__(self, behaviour: str = "look_around", seed: int = 0, rate_hz: float = 90.0,
                 clock: Clock = MONOTONIC, noise: TrackingNoise | None = None,
                 scene_config: SceneConfig | None = None, latency_ns: int | None = None) -> None:
        parse_behaviours(behaviour)
        if not (isinstance(seed, int) and 0 <= seed < 2**63):
            raise ValueError(f"seed {seed!r} must be an integer in [0, 2**63)")
        if not (np.isfinite(rate_hz) and 1.0 <= rate_hz <= 1000.0):
            raise ValueError(f"rate_hz {rate_hz} must be in [1, 1000] Hz")
        self.behaviour, self.seed, self.rate_hz, self.clock = behaviour, seed, float(rate_hz), clock
        self.latency_ns = round(2 * NS_PER_S / rate_hz) if latency_ns is None else int(latency_ns)
        if self.latency_ns < 0:
            raise ValueError(f"latency_ns {latency_ns} must be >= 0")
        rng = np.random.default_rng([seed, 0x05E7])
        self.scene = Scene(seed, scene_config)
        self.hand_model = HandModel(HandModelConfig(scale=float(rng.uniform(0.9, 1.1))))
        eye = np.array([0.0, rng.uniform(1.55, 1.75), 0.0])
        self.timeline = script_episode(Actor(layout=self.scene.layout, hands=self.hand_model, rng=rng, eye=eye),
                                       behaviour)
        self.eye = eye
        self._head_sway = _sway(rng, np.array([0.01, 0.004, 0.01, 0.01, 0.006]))
        self._hand_sway = {side: _sway(rng, np.full(3, 0.004)) for side in SIDES}
        self.tracker = Tracker(noise or TrackingNoise(), rng, self.hand_model.radii)
        self._started = False

    @property
    def duration_s(self) -> float:
        """Length of the scripted behaviours, seconds."""
        return self.timeline.end_s

    @property
    def frame_count(self) -> int:
        """Frames in the scripted behaviours at ``rate_hz`` (at least one)."""
        return max(1, int(np.ceil(self.duration_s * self.rate_hz)))

    def true_pose(self, time_s: float) -> tuple[np.ndarray, tuple[HandPose, HandPose]]:
        """Ground-truth head (4, 4) head-to-world and hands at ``time_s`` seconds, idle sway included."""
        frequency, phase, amplitude = self._head_sway
        sway = (amplitude * np.sin(2 * np.pi * frequency * time_s + phase)).sum(0)
        yaw, pitch = self.timeline.head.sample(time_s) + sway[3:]
        head = np.eye(4)
        head[:3, :3] = euler_yxz(np.array([yaw, pitch, 0.0]))
        head[:3, 3] = self.eye + sway[:3]
        hands = []
        for side in SIDES:
            frequency, phase, amplitude = self._hand_sway[side]
            wrist = self.timeline.wrist[side].sample(time_s)
            position = wrist[:3] + (amplitude * np.sin(2 * np.pi * frequency * time_s + phase)).sum(0)
            hands.append(self.hand_model.pose(position, euler_yxz(wrist[3:]), self.timeline.grip[side].sample(time_s),
                                              side))
        return head, (hands[0], hands[1])

    def steps(self, n_frames: int | None = None) -> Iterator[SimStep]:
        """Every frame (``n_frames``, default :attr:`frame_count`) with its ground truth, unpaced.

        Single use: the scene and the tracking noise advance as frames are drawn, so a second
        call raises; make a new ScriptedUser (same seed: the same episode) to replay.
        """
        count = self.frame_count if n_frames is None else n_frames
        if not (isinstance(count, int) and count >= 1):
            raise ValueError(f"n_frames {n_frames!r} must be an integer >= 1")
        if self._started:
            raise RuntimeError("this ScriptedUser's episode was already started; create a new one to replay it")
        self._started = True
        start_ns = self.clock.now_ns()
        dt_s = 1.0 / self.rate_hz
        for k in range(count):
            offset_ns = round(k * NS_PER_S / self.rate_hz)
            time_s = offset_ns / NS_PER_S
            head, hands = self.true_pose(time_s)
            state = self.scene.step(list(hands[::-1]), dt_s)  # right hand first: it wins ties
            jitter = float(self.timeline.jitter.sample(time_s)[0])
            head_pose, head_tracked = self.tracker.head(head[:3, 3], head[:3, :3], jitter,
                                                        self.timeline.lost("head", time_s))
            reported = [self.tracker.hand(hand, head[:3, 3], head[:3, :3], time_s, dt_s, jitter,
                                          self.timeline.lost(hand.side, time_s)) for hand in hands]
            sample_ns = start_ns + offset_ns
            frame = TrackingFrame(frame_id=k, sample_time_ns=sample_ns,
                                  predicted_display_time_ns=sample_ns + self.latency_ns,
                                  head=head_pose, head_tracked=head_tracked,
                                  left_hand=reported[0], right_hand=reported[1])
            yield SimStep(frame=frame, head=head, hands=hands, state=state,
                          behaviour=self.timeline.behaviour_at(time_s), time_s=time_s)

    def frames(self, n_frames: int | None = None) -> Iterator[TrackingFrame]:
        """TrackingFrames paced on the clock: each is yielded once the clock reaches its sample time."""
        for step in self.steps(n_frames):
            self.clock.sleep_until_ns(step.frame.sample_time_ns)
            yield step.frame
