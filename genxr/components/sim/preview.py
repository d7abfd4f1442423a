"""Pictures of an episode for people: a contact sheet (PNG), an animated GIF or an mp4.

The contact sheet shows ``columns`` frames evenly spaced over the episode: on top the
rendered RGB, below the labels - hand segmentation (left blue, right red), object ids
(table brown, button yellow, box green, ball magenta) and the projected 2D joints
(white dots) - so the ground truth can be checked by eye.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from genxr.platform.units import MS_PER_S

OBJECT_PALETTE = np.array([[0, 0, 0], [120, 80, 40], [230, 210, 40], [40, 170, 60], [200, 50, 200]], np.uint8)
HAND_PALETTE = np.array([[0, 0, 0], [60, 120, 255], [255, 70, 50]], np.uint8)
FORMATS = (".png", ".gif", ".mp4")


def labels_image(hand_mask: np.ndarray, object_mask: np.ndarray, joints_2d: np.ndarray,
                 joints_depth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 picture of one frame's labels: masks (H, W) and joints (2, 26, 2) pixels, (2, 26) m."""
    image = OBJECT_PALETTE[np.minimum(object_mask, len(OBJECT_PALETTE) - 1)].copy()
    hands = hand_mask > 0
    image[hands] = HAND_PALETTE[hand_mask[hands]]
    h, w = hand_mask.shape
    in_front = joints_depth > 0
    u = np.floor(joints_2d[..., 0][in_front]).astype(int)
    v = np.floor(joints_2d[..., 1][in_front]).astype(int)
    keep = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    image[v[keep], u[keep]] = 255
    return image


def contact_sheet(record: dict[str, np.ndarray], columns: int = 8, scale: int = 2) -> np.ndarray:
    """(2 * H * scale, columns * W * scale, 3) uint8: RGB row over labels row of evenly spaced frames."""
    if columns < 1 or scale < 1:
        raise ValueError(f"columns {columns} and scale {scale} must be >= 1")
    count = len(record["rgb"])
    picks = np.unique(np.linspace(0, count - 1, min(columns, count)).round().astype(int))
    top = np.concatenate([record["rgb"][k] for k in picks], 1)
    bottom = np.concatenate([labels_image(record["hand_mask"][k], record["object_mask"][k], record["joints_2d"][k],
                                          record["joints_depth"][k]) for k in picks], 1)
    sheet = np.concatenate([top, bottom], 0)
    return sheet.repeat(scale, 0).repeat(scale, 1)


def save_preview(record: dict[str, np.ndarray], path: Path, fps: float = 30.0, columns: int = 8,
                 scale: int = 2) -> Path:
    """Writes ``record`` to ``path``: ``.png`` a contact sheet, ``.gif``/``.mp4`` every frame (RGB | labels)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"output {path} has suffix {suffix!r}; use one of {', '.join(FORMATS)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the folder of {path}: {err.strerror or err}") from None
    if suffix == ".png":
        Image.fromarray(contact_sheet(record, columns, scale)).save(path, optimize=True)
        return path
    frames = [np.concatenate([record["rgb"][k], labels_image(record["hand_mask"][k], record["object_mask"][k],
                                                             record["joints_2d"][k], record["joints_depth"][k])], 1)
              .repeat(scale, 0).repeat(scale, 1) for k in range(len(record["rgb"]))]
    if suffix == ".gif":
        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(MS_PER_S / fps), loop=0)
        return path
    from genxr.platform.video import VideoWriter

    with VideoWriter(path, fps=fps) as writer:
        for k, frame in enumerate(frames):
            writer.write(frame, f"frame {k}")
    return path
