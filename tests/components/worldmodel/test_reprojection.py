import math

import cv2
import numpy as np
import pytest
import torch

from genxr.components.worldmodel.codec import CODEC_PRESETS, FrameCodec
from genxr.components.worldmodel.conditioning import ConditioningConfig, Tracking
from genxr.components.worldmodel.reprojection import (
    attach_prior,
    frames_from,
    plane_homographies,
    prior_relative,
    reproject,
)

FOV = 80.0
FOCAL = 32 / math.tan(math.radians(FOV / 2))
IDENTITY = torch.tensor([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0])


def _yawed(angle: float, position=(0.0, 1.6, 0.0)) -> torch.Tensor:
    """A head pose turned ``angle`` rad about +Y (to the left for angle > 0)."""
    return torch.tensor([*position, 0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)])


def _map(h: torch.Tensor, u: float, v: float) -> tuple[float, float]:
    p = h.double() @ torch.tensor([u, v, 1.0], dtype=torch.float64)
    return float(p[0] / p[2]), float(p[1] / p[2])


def _homography(pose: torch.Tensor, depth: float = 2.0) -> torch.Tensor:
    return plane_homographies(IDENTITY[None], pose[None, None], 64, FOV, depth)[0, 0]


def test_the_reference_pose_maps_every_pixel_to_itself_and_reprojects_exactly():
    h = _homography(IDENTITY)
    assert torch.allclose(h, torch.eye(3), atol=1e-6)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(reproject(image, h[None, None])[0, 0], image[0], atol=1e-5)


def test_a_head_turned_left_sees_at_its_centre_what_lay_left_of_the_reference_centre():
    angle = math.radians(10)
    u, v = _map(_homography(_yawed(angle)), 32.0, 32.0)
    assert u == pytest.approx(32 - FOCAL * math.tan(angle), abs=1e-3) and v == pytest.approx(32.0, abs=1e-3)


def test_rotation_does_not_depend_on_the_plane_depth_but_translation_does():
    turned = _yawed(math.radians(7))
    assert torch.allclose(_homography(turned, 1.0), _homography(turned, math.inf), atol=1e-5)
    stepped = torch.tensor([0.1, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0])  # 10 cm to the right
    for depth in (1.0, 2.0, 4.0):  # the centre of the plane seen 10 cm to the right of the reference axis
        assert _map(_homography(stepped, depth), 32.0, 32.0)[0] == pytest.approx(32 + FOCAL * 0.1 / depth, abs=1e-3)
    assert _map(_homography(stepped, math.inf), 32.0, 32.0)[0] == pytest.approx(32.0, abs=1e-4)


def test_reproject_agrees_with_opencv_warp_perspective():
    image = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (5, 5), 1.0)  # smooth, so bilinear conventions do not dominate
    h = _homography(_yawed(math.radians(6), position=(0.05, 1.62, -0.03)))
    ours = reproject(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, h[None, None])[0, 0]
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # OpenCV pixel centres are integers
    h_cv = np.linalg.inv(shift) @ h.double().numpy() @ shift
    theirs = cv2.warpPerspective(image, h_cv, (64, 64), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
    difference = np.abs(ours.permute(1, 2, 0).numpy() * 255 - theirs.astype(np.float64))
    assert difference[4:-4, 4:-4].max() <= 2.0


def _tracking(poses: list[torch.Tensor]) -> Tracking:
    head = torch.stack(poses)[None]
    return Tracking(head, torch.zeros(1, len(poses), 2, 26, 3), torch.zeros(1, len(poses), 2, 26), head[:, 0].clone())


def test_attach_prior_gives_the_reprojected_anchor_and_zero_corrections_reproduce_it():
    codec = FrameCodec(CODEC_PRESETS["tiny"])
    codec.fit(torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    anchor = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    tracking, pixels = attach_prior(codec, anchor, _tracking([IDENTITY, _yawed(0.1), _yawed(0.2)]), ConditioningConfig())
    assert tracking.prior.shape == (1, 3, 8, 8, 8) and pixels.shape == (1, 3, 3, 64, 64)
    assert torch.allclose(pixels[0, 0], anchor[0], atol=1e-5)  # the anchor's own pose
    assert not torch.allclose(pixels[0, 2], anchor[0], atol=1e-2)
    assert torch.allclose(tracking.prior[0, 0], codec.encode(anchor)[0], atol=1e-4)
    assert torch.allclose(frames_from(codec, torch.zeros(1, 3, 8, 8, 8), pixels), pixels.clamp(0, 1))
    latents = torch.randn(1, 3, 8, 8, 8)
    relative = prior_relative(latents, tracking.prior)
    assert torch.equal(relative[:, 0], latents[:, 0])
    assert torch.allclose(relative[:, 1:] + tracking.prior[:, 1:], latents[:, 1:], atol=1e-6)


def test_without_reprojection_the_prior_is_the_anchor_repeated():
    codec = FrameCodec(CODEC_PRESETS["tiny"])
    anchor = torch.rand(1, 3, 64, 64)
    config = ConditioningConfig(reprojection=False)
    tracking, pixels = attach_prior(codec, anchor, _tracking([IDENTITY, _yawed(0.3)]), config)
    assert torch.equal(pixels[0, 1], anchor[0])
    assert torch.allclose(tracking.prior[0, 1], codec.encode(anchor)[0])
