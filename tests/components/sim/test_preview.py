"""Previews: the contact sheet layout and the label picture (masks and projected joints)."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.preview import HAND_PALETTE, contact_sheet, labels_image, save_preview


def record(frames: int = 5, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "rgb": rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8),
        "hand_mask": np.zeros((frames, size, size), np.uint8),
        "object_mask": np.ones((frames, size, size), np.uint8),
        "joints_2d": np.full((frames, 2, 26, 2), 2.5, np.float32),
        "joints_depth": np.ones((frames, 2, 26), np.float32),
        "sample_time_ns": np.arange(frames, dtype=np.int64),
    }


def test_contact_sheet_puts_rgb_over_labels_for_evenly_spaced_frames():
    data = record()
    sheet = contact_sheet(data, columns=3, scale=2)
    assert sheet.shape == (2 * 8 * 2, 3 * 8 * 2, 3)
    np.testing.assert_array_equal(sheet[:16:2, 16:32:2], data["rgb"][2])  # middle column: frame 2 of 0..4


def test_labels_show_hands_over_objects_and_joints_in_white():
    hand = np.zeros((8, 8), np.uint8)
    hand[5, 5] = 2
    joints = np.full((2, 26, 2), 2.5, np.float32)
    depth = np.ones((2, 26), np.float32)
    depth[1] = -1.0  # behind the camera: not drawn
    image = labels_image(hand, np.ones((8, 8), np.uint8), joints, depth)
    assert image[5, 5].tolist() == HAND_PALETTE[2].tolist()
    assert image[2, 2].tolist() == [255, 255, 255]


def test_unknown_suffix_is_rejected_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="use one of .png, .gif, .mp4"):
        save_preview(record(), tmp_path / "x.jpg")
