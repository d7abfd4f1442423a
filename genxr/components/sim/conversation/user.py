"""The user's head trajectory around the agent: standing spells and walks between spots.

Avatar frame (metres, +Y up, agent at the origin facing +Z at rest). The user stands
0.9-3 m away for a few seconds, then walks to another spot at 0.7-1.2 m/s. Walks are
interpolated in polar coordinates around the agent (bearing and distance with a
minimum-jerk profile), so a walk to the other side goes around the agent, never through.
"""

from __future__ import annotations

import numpy as np

from genxr.components.avatar.skeleton import wrap_angle

FPS = 30


def minimum_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk progress 10 s^3 - 15 s^4 + 6 s^5 for ``s`` in [0, 1] (zero speed at both ends)."""
    return s ** 3 * (10.0 - 15.0 * s + 6.0 * s * s)


def simulate_user(rng: np.random.Generator, frames: int, fps: int = FPS) -> tuple[np.ndarray, np.ndarray]:
    """User head positions (frames, 3) metres and walking flags (frames,) bool."""
    bearing = np.empty(frames)
    distance = np.empty(frames)
    walking = np.zeros(frames, dtype=bool)
    b = rng.uniform(-1.75, 1.75) if rng.random() < 0.8 else rng.uniform(-np.pi, np.pi)
    d = rng.uniform(0.9, 3.0)
    i = 0
    while i < frames:
        stand = int(rng.uniform(1.5, 7.0) * fps)
        bearing[i:i + stand], distance[i:i + stand] = b, d
        i += stand
        if i >= frames:
            break
        b1 = b + rng.uniform(-2.2, 2.2)
        d1 = rng.uniform(0.9, 3.0)
        mean_d = 0.5 * (d + d1)
        length = np.hypot(abs(b1 - b) * mean_d, d1 - d)
        steps = max(int(length / rng.uniform(0.7, 1.2) * fps), 2)
        s = minimum_jerk(np.linspace(0.0, 1.0, steps))
        bearing[i:i + steps] = (b + (b1 - b) * s)[: frames - i]
        distance[i:i + steps] = (d + (d1 - d) * s)[: frames - i]
        walking[i:i + steps] = True
        i += steps
        b, d = float(wrap_angle(b1)), d1
    t = np.arange(frames) / fps
    eye_height = rng.uniform(1.55, 1.85)
    bob = np.where(walking, 0.02 * np.sin(2.0 * np.pi * 1.9 * t), 0.008 * np.sin(2.0 * np.pi * 0.2 * t))
    head = np.stack([distance * np.sin(bearing), eye_height + bob, distance * np.cos(bearing)], axis=-1)
    return head, walking
