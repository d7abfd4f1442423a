import numpy as np
import pytest

from genxr.components.worldmodel import metrics


def test_psnr_and_masked_psnr():
    a = np.zeros((4, 4, 3))
    b = a + 0.1
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    mask = np.zeros((4, 4), bool)
    assert np.isnan(metrics.psnr(a, b, mask))
    mask[0, 0] = True
    assert metrics.psnr(a, b, mask) == pytest.approx(20.0)


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    image = rng.random((2, 32, 32, 3))
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    noise = rng.normal(0, 1, image.shape)
    scores = [metrics.ssim(image, np.clip(image + level * noise, 0, 1)) for level in (0.02, 0.1, 0.3)]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    assert metrics.ssim(image, 1.0 - image) < 0


def test_hand_and_button_detectors():
    image = np.zeros((1, 4, 4, 3))
    image[0, 0, 0] = np.array([0.85, 0.62, 0.5]) * 0.7
    assert metrics.hand_pixels(image)[0, 0, 0] and metrics.hand_pixels(image).sum() == 1
    object_mask = np.zeros((2, 4, 4), np.uint8)
    object_mask[:, :2, :2] = metrics.BUTTON_ID
    frames = np.zeros((2, 4, 4, 3))
    frames[0, :2, :2] = [1.0, 0.95, 0.35]
    frames[1, :2, :2] = [0.45, 0.08, 0.08]
    lit, visible = metrics.button_lit(frames, object_mask)
    assert lit.tolist() == [True, False] and visible.all()
    assert metrics.iou(np.ones(3, bool), np.array([True, False, False])) == pytest.approx(1 / 3)


def test_object_positions_are_read_from_the_mask_and_from_the_anchor_colour():
    mask = np.zeros((2, 8, 8), np.uint8)
    mask[0, 2:4, 4:6] = 4  # the ball in frame 0 only
    centres = metrics.mask_centroids(mask, 4)
    assert np.allclose(centres[0], [5.0, 3.0]) and np.isnan(centres[1]).all()
    images = np.full((2, 8, 8, 3), 0.5)
    images[0, 2:4, 4:6] = [0.9, 0.1, 0.1]
    colour = metrics.object_colour(images[0], mask[0], 4)
    assert np.allclose(colour, [0.9, 0.1, 0.1]) and metrics.object_colour(images[1], mask[1], 4) is None
    found = metrics.object_centroids(images, colour)
    assert np.allclose(found[0], [5.0, 3.0]) and np.isnan(found[1]).all()
