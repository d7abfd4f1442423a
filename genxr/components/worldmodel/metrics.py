"""Image metrics of generated frames against the simulator's ground truth.

Images are float arrays (..., H, W, 3) in [0, 1]. SSIM is the standard single-scale SSIM
(Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03) on each colour
channel, averaged; written here with a separable convolution because torchvision and
scikit-image are not dependencies of genxr.

Hand and button detectors read colours the renderer uses: hands are drawn in a skin colour
whose chromaticity (rgb / (r + g + b)) is the same in every room, and the button cap turns
from dark red to yellow when lit (green chromaticity above :data:`LIT_GREEN_CHROMA`). On
ground-truth frames both detectors agree with the simulator's masks and state (IoU 1.0 and
every visible button frame on the held-out set), so their errors on generated frames are
the model's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

SKIN_CHROMA = np.array([0.85, 0.62, 0.5]) / 1.97
SKIN_TOLERANCE = 0.03
LIT_GREEN_CHROMA = 0.345
BUTTON_ID = 2


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of [0, 1] images; over ``mask`` (..., H, W) pixels only if given."""
    error = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        if not mask.any():
            return float("nan")
        error = error[mask]
    return float(-10.0 * np.log10(max(error.mean(), 1e-10)))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of image pairs (N, H, W, 3) (or one (H, W, 3)) in [0, 1], valid windows only."""
    x = torch.as_tensor(np.asarray(a, np.float64)).reshape(-1, *a.shape[-3:]).permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(b, np.float64)).reshape(-1, *b.shape[-3:]).permute(0, 3, 1, 2)
    g = _gaussian_window()
    channels = x.shape[1]
    horizontal = g.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = g.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, horizontal, groups=channels), vertical, groups=channels)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(value.mean())


def chromaticity(images: np.ndarray) -> np.ndarray:
    """(..., 3) rgb / (r + g + b)."""
    return images / np.clip(images.sum(-1, keepdims=True), 1e-3, None)


def hand_pixels(images: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: pixels of skin chromaticity (the rendered hands)."""
    return (np.linalg.norm(chromaticity(images) - SKIN_CHROMA, axis=-1) < SKIN_TOLERANCE) & (images.sum(-1) > 0.15)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (nan when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def button_lit(images: np.ndarray, object_mask: np.ndarray, min_pixels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of (N, H, W, 3) images: (lit (N,) bool, visible (N,) bool), reading the button's
    pixels of the ground-truth ``object_mask`` (N, H, W); frames with fewer than ``min_pixels`` are not visible."""
    button = object_mask == BUTTON_ID
    count = button.sum((1, 2))
    green = np.where(button, chromaticity(images)[..., 1], 0.0).sum((1, 2)) / np.maximum(count, 1)
    return green > LIT_GREEN_CHROMA, count >= min_pixels


OBJECT_COLOUR_TOLERANCE = 0.08
"""Largest RGB distance (in [0, 1] units) of a pixel from an object's anchor colour to count as the object."""


def object_colour(image: np.ndarray, object_mask: np.ndarray, object_id: int, min_pixels: int = 3
                  ) -> np.ndarray | None:
    """The median colour (3,) of object ``object_id``'s pixels in one observed ``image`` (H, W, 3), or None
    when it shows fewer than ``min_pixels``."""
    pixels = image[object_mask == object_id]
    return np.median(pixels, 0) if len(pixels) >= min_pixels else None


def _centroids(masks: np.ndarray, min_pixels: int) -> np.ndarray:
    """(N, 2) centroid (u, v) in pixels of each boolean mask (N, H, W), NaN where fewer than ``min_pixels`` are set."""
    v, u = np.mgrid[:masks.shape[1], :masks.shape[2]]
    count = masks.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([(masks * (u + 0.5)).sum((1, 2)) / count, (masks * (v + 0.5)).sum((1, 2)) / count], -1)
    centre[count < min_pixels] = np.nan
    return centre


def object_centroids(images: np.ndarray, colour: np.ndarray, min_pixels: int = 3) -> np.ndarray:
    """(N, 2) centroid (u, v) in pixels of the pixels of ``colour`` in each image (N, H, W, 3), NaN where
    fewer than ``min_pixels`` match (:data:`OBJECT_COLOUR_TOLERANCE`)."""
    return _centroids(np.linalg.norm(images - colour, axis=-1) < OBJECT_COLOUR_TOLERANCE, min_pixels)


def mask_centroids(object_mask: np.ndarray, object_id: int, min_pixels: int = 3) -> np.ndarray:
    """(N, 2) centroid (u, v) of ``object_id`` in each ground-truth mask (N, H, W), NaN where it is not visible."""
    return _centroids(object_mask == object_id, min_pixels)
