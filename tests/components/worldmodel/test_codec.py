import pytest
import torch

from genxr.components.worldmodel.codec import (
    CODEC_PRESETS,
    FrameCodec,
    FrameCodecConfig,
)


def _images(n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(n, 3, 1, 1, generator=g)
    return (base + 0.1 * torch.rand(n, 3, 64, 64, generator=g)).clamp(0, 1)


def test_shapes_and_range():
    codec = FrameCodec(CODEC_PRESETS["cpu"])
    codec.fit(_images())
    latents = codec.encode(_images(4))
    assert latents.shape == (4, 16, 8, 8)
    images = codec.decode(latents * 10)
    assert images.shape == (4, 3, 64, 64) and images.min() >= 0 and images.max() <= 1


def test_full_rank_codec_is_lossless_and_latents_are_unit_scale():
    codec = FrameCodec(FrameCodecConfig(latent_channels=192))
    images = _images()
    codec.fit(images)
    assert torch.allclose(codec.decode(codec.encode(images)), images, atol=1e-4)
    assert codec.encode(images).pow(2).mean().item() == pytest.approx(1.0, rel=1e-3)


def test_leading_components_explain_the_most_variance():
    images = _images(32)
    errors = []
    for channels in (4, 16, 48):
        codec = FrameCodec(FrameCodecConfig(latent_channels=channels))
        codec.fit(images)
        errors.append(torch.mean((codec.decode(codec.encode(images)) - images) ** 2).item())
    assert errors[0] > errors[1] > errors[2]


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        FrameCodec(FrameCodecConfig(resolution=60))
    with pytest.raises(ValueError, match="latent_channels"):
        FrameCodec(FrameCodecConfig(latent_channels=500))


def test_decode_change_is_the_linear_part_of_decode():
    codec = FrameCodec(CODEC_PRESETS["tiny"])
    codec.fit(torch.rand(32, 3, 64, 64, generator=torch.Generator().manual_seed(4)))
    a, b = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)
    assert torch.allclose(codec.decode_change(a) - codec.decode_change(b), codec.decode_change(a - b), atol=1e-5)
    mean_image = codec.decode(torch.zeros(1, 8, 8, 8))  # the patch mean lies inside [0, 1]: no clamping
    assert torch.allclose(codec.decode(a), (mean_image + codec.decode_change(a)).clamp(0, 1), atol=1e-5)
