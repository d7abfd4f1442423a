"""Attention by whole heads: head counts, consistency of GQA query heads, forward after compression."""

from __future__ import annotations

import pytest
import torch

from genxr.compression import fold, prune
from genxr.compression.heads import attention_modules


@pytest.mark.parametrize("name,heads,kv_heads", [("vit", 4, 4), ("llama", 4, 2)])
@pytest.mark.parametrize("method", ["fold", "prune"])
def test_head_counts_are_updated_and_forward_works(tiny, name, heads, kv_heads, method):
    model, x = tiny(name)
    out, report = fold(model, x, 0.5) if method == "fold" else prune(model, x, 0.5, "l2")
    for attn in attention_modules(out).values():
        assert attn.num_kv_heads == kv_heads // 2
        assert attn.num_heads == heads // 2
        assert attn.q_proj.out_features == attn.num_heads * attn.head_dim
        assert attn.k_proj.out_features == attn.v_proj.out_features == attn.num_kv_heads * attn.head_dim
        assert attn.o_proj.in_features == attn.num_heads * attn.head_dim
    assert out(x).shape == model(x).shape
    head_reports = [g for g in report.groups if g.kind == "heads"]
    assert len(head_reports) == 2 and all(g.before == kv_heads and g.after == kv_heads // 2 for g in head_reports)


def test_gqa_keeps_the_query_heads_of_the_kept_kv_head(tiny):
    model, x = tiny("llama")
    attn = model.blocks[0].attn
    hd = attn.head_dim
    with torch.no_grad():
        for layer, rows in ((attn.q_proj, slice(2 * hd, 4 * hd)), (attn.k_proj, slice(hd, 2 * hd)), (attn.v_proj, slice(hd, 2 * hd))):
            layer.weight[rows] *= 10
    original_q = attn.q_proj.weight[2 * hd:4 * hd].clone()
    original_o = attn.o_proj.weight[:, 2 * hd:4 * hd].clone()
    pruned, _ = prune(model, x, 0.5, "l2")
    kept = pruned.blocks[0].attn
    assert torch.equal(kept.q_proj.weight, original_q)
    assert torch.equal(kept.o_proj.weight, original_o)


def test_attention_can_be_left_whole(tiny):
    model, x = tiny("vit")
    out, report = fold(model, x, 0.5, attention=False)
    assert all(a.num_heads == 4 for a in attention_modules(out).values())
    assert all(g.kind == "channels" for g in report.groups)
