"""Figures of the world-model evaluation: drift plot, contact sheet, side-by-side video."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def drift_plot(per_model: dict[str, dict], path: Path) -> None:
    """PSNR (dB) against rollout frame for every model (``per_model[name]["psnr_by_frame"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    for name, values in per_model.items():
        curve = values["psnr_by_frame"]
        axis.plot(np.arange(1, len(curve) + 1), curve, label=name, linestyle="--" if name in ("codec", "anchor_copy", "reprojection") else "-")
    axis.set_xlabel("generated frame (30 Hz)")
    axis.set_ylabel("PSNR vs ground truth (dB)")
    axis.set_title("Held-out rollouts from tracking alone")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _to_uint8(frames: np.ndarray, scale: int) -> np.ndarray:
    frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    return frames.repeat(scale, -3).repeat(scale, -2)


def contact_sheet(rows: dict[str, np.ndarray], path: Path, columns: int = 8, scale: int = 2) -> None:
    """One row per entry of ``rows`` ((T, H, W, 3) in [0, 1]), ``columns`` frames evenly spaced, labelled."""
    from PIL import Image, ImageDraw

    frames = next(iter(rows.values())).shape[0]
    picks = np.linspace(0, frames - 1, columns).round().astype(int)
    tiles = [np.concatenate(list(_to_uint8(r[picks], scale)), 1) for r in rows.values()]
    label_w = 120
    sheet = Image.new("RGB", (label_w + tiles[0].shape[1], sum(t.shape[0] for t in tiles) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    y = 14
    for (name, _), tile in zip(rows.items(), tiles):
        sheet.paste(Image.fromarray(tile), (label_w, y))
        draw.text((4, y + tile.shape[0] // 2 - 5), name, fill="black")
        y += tile.shape[0]
    for i, p in enumerate(picks):
        draw.text((label_w + i * tiles[0].shape[1] // columns + 2, 1), f"t={p + 1}", fill="black")
    sheet.save(path)


def side_by_side_video(rows: dict[str, np.ndarray], path: Path, fps: int = 30, scale: int = 4) -> None:
    """H.264 mp4 of the ``rows`` placed side by side (e.g. generated | ground truth), via PyAV."""
    import av

    frames = np.concatenate([_to_uint8(r, scale) for r in rows.values()], 2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: stream.height, : stream.width]), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
