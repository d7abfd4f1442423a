from dataclasses import replace

import pytest
import torch

from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.dit import DIT_PRESETS, VideoDiT, chunk_ids


def _model(causal: bool, **changes) -> VideoDiT:
    torch.manual_seed(0)
    model = VideoDiT(replace(DIT_PRESETS["tiny"], causal=causal, **changes)).eval()
    for p in model.parameters():  # adaLN-zero starts as identity: perturb so every path matters
        p.data.add_(torch.randn_like(p) * 0.05)
    return model


def _inputs(frames: int, batch: int = 2):
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(batch, frames, 8, 8, 8, generator=g)
    sigma = torch.rand(batch, frames, generator=g)
    head = torch.tensor([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0]).expand(batch, frames, 7).clone()
    head[..., 0] += torch.linspace(0, 0.2, frames)
    hands = torch.randn(batch, frames, 2, 26, 3, generator=g) * 0.1 + torch.tensor([0.0, 1.5, -0.4])
    valid = (torch.rand(batch, frames, 2, 26, generator=g) > 0.2).float()
    prior = torch.randn(batch, frames, 8, 8, 8, generator=g)
    return latents, sigma, Tracking(head, hands, valid, head[:, 0].clone(), prior)


def test_chunk_ids():
    assert chunk_ids(7, 1, 2).tolist() == [0, 1, 1, 2, 2, 3, 3]


def test_kv_cached_streaming_equals_full_causal_recompute():
    model = _model(causal=True)
    latents, sigma, tracking = _inputs(7)
    with torch.no_grad():
        full = model(latents, sigma, tracking)
        cache, outputs = None, []
        for start, stop in ((0, 1), (1, 3), (3, 5), (5, 7)):
            out, cache = model.step(latents[:, start:stop], sigma[:, start:stop], tracking.frames(start, stop), cache)
            outputs.append(out)
    assert cache.frames == 7
    assert torch.allclose(torch.cat(outputs, 1), full, atol=1e-5)


def test_causal_model_ignores_the_future_and_teacher_does_not():
    latents, sigma, tracking = _inputs(7)
    later = latents.clone()
    later[:, 5:] += 1.0
    for causal in (True, False):
        model = _model(causal)
        with torch.no_grad():
            a, b = model(latents, sigma, tracking), model(later, sigma, tracking)
        same_past = torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
        assert same_past == causal


def test_rolling_cache_is_bounded_by_sink_and_window():
    model = _model(causal=True, sink_frames=1, window_frames=4)
    latents, sigma, tracking = _inputs(3, batch=1)
    with torch.no_grad():
        _, cache = model.step(latents[:, :1], sigma[:, :1], tracking.frames(0, 1), None)
        sink_keys = cache.keys[0].clone()
        for _ in range(20):
            out, cache = model.step(latents[:, 1:], sigma[:, 1:], tracking.frames(1, 3), cache)
            assert torch.isfinite(out).all()
    n = model.config.tokens_per_frame
    assert cache.frames == 5 and cache.keys[0].shape[2] == 5 * n
    assert torch.equal(cache.keys[0][:, :, :n], sink_keys)


def test_lost_tracking_is_an_input_not_a_crash():
    model = _model(causal=False)
    latents, sigma, tracking = _inputs(3)
    tracking.joint_valid.zero_()
    tracking.hand_positions.fill_(1e6)  # garbage where invalid must not leak
    with torch.no_grad():
        out = model(latents, sigma, tracking)
        tracking.hand_positions.fill_(-3.0)
        again = model(latents, sigma, tracking)
    assert torch.isfinite(out).all() and torch.allclose(out, again)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        VideoDiT(replace(DIT_PRESETS["tiny"], patch=3))


def test_a_cache_trimmed_to_its_sink_alone_keeps_only_the_sink():
    from genxr.components.worldmodel.dit import KVCache

    keys = [torch.arange(10.0).reshape(1, 1, 10, 1)]
    cache = KVCache(keys, [k.clone() for k in keys], 5).trimmed(sink=1, window=0, tokens_per_frame=2)
    assert cache.frames == 1 and cache.keys[0].flatten().tolist() == [0.0, 1.0]
    kept = KVCache(keys, [k.clone() for k in keys], 5).trimmed(sink=1, window=2, tokens_per_frame=2)
    assert kept.keys[0].flatten().tolist() == [0.0, 1.0, 6.0, 7.0, 8.0, 9.0]


def test_the_prior_is_an_input_and_must_match_the_latents():
    model = _model(causal=False)
    latents, sigma, tracking = _inputs(3)
    with torch.no_grad():
        out = model(latents, sigma, tracking)
        moved = model(latents, sigma, replace(tracking, prior=tracking.prior + 1.0))
    assert not torch.allclose(out, moved, atol=1e-4)
    with pytest.raises(ValueError, match="tracking.prior None"):
        model(latents, sigma, replace(tracking, prior=None))
    with pytest.raises(ValueError, match="tracking.prior"):
        model(latents, sigma, replace(tracking, prior=tracking.prior[:, :2]))


def test_without_reprojection_the_model_has_no_prior_channels_and_ignores_it():
    conditioning = replace(DIT_PRESETS["tiny"].conditioning, reprojection=False)
    plain = _model(causal=False, conditioning=conditioning)
    full = _model(causal=False)
    assert plain.embed.in_features == full.embed.in_features - 8 * 2 * 2
    latents, sigma, tracking = _inputs(3)
    with torch.no_grad():
        assert torch.equal(plain(latents, sigma, tracking), plain(latents, sigma, replace(tracking, prior=None)))


@pytest.mark.parametrize("window", [2, 4, 6])
def test_a_fused_clean_write_and_denoising_step_equals_the_two_calls(window):
    model = _model(causal=True, sink_frames=1, window_frames=window)
    latents, sigma, tracking = _inputs(11, batch=1)
    clean_sigma = torch.zeros(1, 2)
    with torch.no_grad():
        _, cache = model.step(latents[:, :1], torch.zeros(1, 1), tracking.frames(0, 1), None)
        _, cache = model.step(latents[:, 1:3], clean_sigma, tracking.frames(1, 3), cache)
        for start in (3, 5, 7, 9):  # the cache fills, then rolls: every trimming case is reached
            clean, new = slice(start - 2, start), slice(start, start + 2)
            _, written = model.step(latents[:, clean], clean_sigma, tracking.frames(clean.start, clean.stop), cache)
            expected, _ = model.step(latents[:, new], sigma[:, new], tracking.frames(new.start, new.stop), written)
            both = slice(clean.start, new.stop)
            fused, fused_cache = model.step(latents[:, both], torch.cat([clean_sigma, sigma[:, new]], 1),
                                            tracking.frames(both.start, both.stop), cache, pending=2)
            assert torch.allclose(fused, expected, atol=1e-5), start
            assert fused_cache.frames == written.frames
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fused_cache.keys, written.keys))
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fused_cache.values, written.values))
            cache = written


def test_pending_must_leave_frames_to_denoise():
    model = _model(causal=True)
    latents, sigma, tracking = _inputs(2, batch=1)
    with pytest.raises(ValueError, match="pending 2"):
        model.step(latents, sigma, tracking, None, pending=2)
