"""Hugging Face transformers models: attention by whole heads (MHA and GQA with rotary), MLPs,
config rewriting, save / load round trips, generate(), and clear errors. Small random configs,
nothing downloaded."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import transformers as T
from torch import nn

from genxr.compression import AttentionLayoutError, TraceError, fold, hf, prune
from genxr.compression.heads import find_attention

warnings.filterwarnings("ignore", message=".*token_id must be.*")
T.utils.logging.set_verbosity_error()
T.utils.logging.disable_progress_bar()

COMMON = dict(hidden_size=64, num_attention_heads=4, intermediate_size=128, num_hidden_layers=2)
DECODER = dict(vocab_size=100, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
               num_hidden_layers=2)


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    make = {
        "bert": lambda: T.BertModel(T.BertConfig(vocab_size=100, **COMMON)),
        "roberta": lambda: T.RobertaModel(T.RobertaConfig(vocab_size=100, **COMMON)),
        "vit": lambda: T.ViTModel(T.ViTConfig(image_size=16, patch_size=4, **COMMON)),
        "clip-vision": lambda: T.CLIPVisionModel(T.CLIPVisionConfig(image_size=16, patch_size=4, **COMMON)),
        "clip-text": lambda: T.CLIPTextModel(T.CLIPTextConfig(vocab_size=100, **COMMON)),
        "clip": lambda: T.CLIPModel(T.CLIPConfig(text_config=dict(vocab_size=100, **COMMON), projection_dim=32,
                                                 vision_config=dict(image_size=16, patch_size=4, **COMMON))),
        "llama": lambda: T.LlamaForCausalLM(T.LlamaConfig(**DECODER)),
        "qwen2": lambda: T.Qwen2ForCausalLM(T.Qwen2Config(**DECODER)),
        "mistral": lambda: T.MistralForCausalLM(T.MistralConfig(**DECODER)),
    }[name]
    return make().eval()


FAMILIES = ["bert", "roberta", "vit", "clip-vision", "clip-text", "clip", "llama", "qwen2", "mistral"]
# (query heads, kv heads) per attention module before compression
HEADS = {name: (4, 2) if name in ("llama", "qwen2", "mistral") else (4, 4) for name in FAMILIES}
# which format save_pretrained chooses: BERT/CLIP derive head width from hidden_size / heads; Qwen2 and
# Mistral cannot give down_proj alone the bias the expected-activation repair adds
NATIVE = {("vit", "fold"), ("vit", "prune"), ("llama", "fold"), ("llama", "prune"), ("qwen2", "prune"),
          ("mistral", "prune")}


def output(model, x) -> torch.Tensor:
    with torch.no_grad():
        out = model(**x)
    for key in ("logits", "last_hidden_state", "logits_per_image"):
        if key in out:
            return out[key]
    raise AssertionError(list(out))


@pytest.mark.parametrize("method", ["fold", "prune"])
@pytest.mark.parametrize("name", FAMILIES)
def test_families_compress_by_whole_heads_and_round_trip(name, method, tmp_path):
    model = build(name)
    x = hf.example_inputs(model, batch=2, length=7)
    out, report = fold(model, x, 0.5) if method == "fold" else prune(model, x, 0.5, "l2")
    n_q, n_kv = HEADS[name]
    heads = [g for g in report.groups if g.kind == "heads"]
    mlps = [g for g in report.groups if g.kind == "channels"]
    n_attention = 4 if name == "clip" else 2
    assert [(g.before, g.after) for g in heads] == [(n_kv, n_kv // 2)] * n_attention
    assert len(mlps) == n_attention and all(g.after == g.before // 2 for g in mlps)
    if method == "fold" and name not in ("clip", "clip-text", "clip-vision"):  # CLIP's quick_gelu has no repair
        assert all(g.repair == "expected-activation" for g in mlps)
    for unit in find_attention(out).found.values():
        assert (unit.num_heads, unit.num_kv_heads) == (n_q // 2, n_kv // 2)
        for attr in ("num_heads", "num_attention_heads"):
            if hasattr(unit.holder, attr):
                assert getattr(unit.holder, attr) == n_q // 2
    assert report.params_after < report.params_before and report.macs_after < report.macs_before
    assert output(out, x).shape == output(model, x).shape

    saved = hf.save_pretrained(out, tmp_path / "saved", metadata={"test": 1})
    assert saved["format"] == ("transformers" if (name, method) in NATIVE else "genxr-hf")
    reloaded = hf.load_pretrained(tmp_path / "saved")
    torch.testing.assert_close(output(reloaded, x), output(out, x), rtol=0, atol=0)
    if saved["format"] == "transformers":
        stock = type(model).from_pretrained(tmp_path / "saved", local_files_only=True).eval()
        torch.testing.assert_close(output(stock, x), output(out, x), rtol=0, atol=0)
        assert report.config_updates and not report.config_note
    else:
        config = json.loads((tmp_path / "saved" / "config.json").read_text())
        assert config["format"] == "genxr-hf" and config["why"] and config["metadata"] == {"test": 1}
        assert report.config_note and not report.config_updates


def duplicate_heads(model: nn.Module) -> None:
    """Makes kv group j + n/2 of every attention module a copy of group j (q/k/v rows, o columns)."""
    with torch.no_grad():
        for unit in find_attention(model).found.values():
            n_kv, rep, hd = unit.num_kv_heads, unit.num_heads // unit.num_kv_heads, unit.head_dim
            half = n_kv // 2
            for layer, dim, width in ((unit.q, 0, rep * hd), (unit.k, 0, hd), (unit.v, 0, hd), (unit.o, 1, rep * hd)):
                for tensor in (layer.weight, layer.bias):
                    if tensor is None or (dim == 1 and tensor.dim() == 1):
                        continue
                    view = tensor.data.movedim(dim, 0)
                    view[half * width:2 * half * width] = view[:half * width]


@pytest.mark.parametrize("name", ["bert", "clip-text", "llama", "qwen2"])
def test_folding_duplicated_heads_is_exact(name):
    """Circuit merging (mean query-key logits, summed value-output maps; rotary models: mean q/k rows)
    is exact when the merged heads are identical, with and without GQA and rotary embeddings."""
    model = build(name)
    duplicate_heads(model)
    x = hf.example_inputs(model, batch=2, length=7)
    mlps = [m for n, m in model.named_modules() if n.endswith(("intermediate.dense", "fc1", "up_proj", "gate_proj"))]
    folded, report = fold(model, x, 0.5, ignored_layers=mlps)
    assert {(g.kind, g.before, g.after) for g in report.groups} == {("heads", HEADS[name][1], HEADS[name][1] // 2)}
    torch.testing.assert_close(output(folded, x), output(model, x), rtol=1e-4, atol=1e-4)
    pruned, _ = prune(model, x, 0.5, ignored_layers=mlps)
    assert not torch.allclose(output(pruned, x), output(model, x), atol=1e-3)  # pruning loses the copies


@pytest.mark.parametrize("name", ["llama", "qwen2", "mistral"])
def test_generate_works_after_folding_and_reloading(name, tmp_path):
    model = build(name)
    folded, _ = fold(model, hf.example_inputs(model), 0.5)
    prompt = torch.randint(0, 100, (1, 5), generator=torch.Generator().manual_seed(1))
    cached = folded.generate(prompt, max_new_tokens=6, do_sample=False)
    uncached = folded.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False)
    assert cached.shape == (1, 11) and torch.equal(cached, uncached)  # the kv cache has the kept heads' shape
    hf.save_pretrained(folded, tmp_path)
    assert torch.equal(hf.load_pretrained(tmp_path).generate(prompt, max_new_tokens=6, do_sample=False), cached)


def test_gqa_pruning_keeps_the_query_heads_of_the_kept_kv_head():
    model = build("llama")
    attn = model.model.layers[0].self_attn
    hd = attn.head_dim
    with torch.no_grad():
        for layer, rows in ((attn.q_proj, slice(2 * hd, 4 * hd)), (attn.k_proj, slice(hd, 2 * hd)),
                            (attn.v_proj, slice(hd, 2 * hd))):
            layer.weight[rows] *= 10
    pruned, _ = prune(model, hf.example_inputs(model), 0.5, "l2")
    kept = pruned.model.layers[0].self_attn
    assert torch.equal(kept.q_proj.weight, attn.q_proj.weight[2 * hd:4 * hd])
    assert torch.equal(kept.o_proj.weight, attn.o_proj.weight[:, 2 * hd:4 * hd])
    assert pruned.config.num_key_value_heads == 1 and pruned.config.num_attention_heads == 2


def test_layers_compressed_unevenly_save_in_genxr_format(tmp_path):
    model = build("llama")
    x = hf.example_inputs(model, batch=2, length=7)
    folded, report = fold(model, x, 0.5, ignored_layers=[model.model.layers[1].mlp.up_proj])
    assert "MLP widths differ between layers" in report.config_note and folded.config.intermediate_size == 96
    saved = hf.save_pretrained(folded, tmp_path)
    assert saved["format"] == "genxr-hf"
    torch.testing.assert_close(output(hf.load_pretrained(tmp_path), x), output(folded, x), rtol=0, atol=0)


def test_attention_only_or_mlp_only():
    model = build("bert")
    x = hf.example_inputs(model)
    _, report = fold(model, x, 0.5, attention=False)
    assert {g.kind for g in report.groups} == {"channels"}
    assert report.skipped["encoder.layer.0.attention"] == "attention left whole (attention=False)"
    assert report.config_updates == {"intermediate_size": 64}  # heads whole: BertConfig describes it


def test_a_ratio_that_leaves_no_kv_head_names_the_attention():
    model = build("llama")
    with pytest.raises(ValueError, match=r"ratio 0.6 leaves zero of the 2 kv heads of attention 'model.layers.0.self_attn'"):
        fold(model, hf.example_inputs(model), 0.6)


def test_unknown_attention_layout_is_refused_naming_the_module():
    torch.manual_seed(0)
    gpt2 = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=100, n_embd=64, n_head=4, n_layer=2, n_positions=32)).eval()
    x = hf.example_inputs(gpt2)
    with pytest.raises(AttentionLayoutError, match=r"attention module 'transformer.h.0.attn' .*GPT2Attention.*attention=False"):
        fold(gpt2, x, 0.5)
    _, report = prune(gpt2, x, 0.5, attention=False)
    assert report.skipped["transformer.h.0.attn"].startswith("attention of unknown layout, left whole")


def test_attention_whose_head_count_contradicts_its_projections_names_the_field():
    model = build("bert")
    model.encoder.layer[1].attention.self.num_attention_heads = 3
    with pytest.raises(AttentionLayoutError, match=r"'encoder.layer.1.attention'.*num_attention_heads.* = 3"):
        fold(model, hf.example_inputs(model), 0.5)


def test_a_model_torch_pruning_cannot_trace_names_the_module():
    class Detached(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = build("bert")

        def forward(self, input_ids):
            states = self.bert(input_ids=input_ids).last_hidden_state
            return torch.from_numpy(states.detach().numpy()).sum(-1)

    with pytest.raises(TraceError, match=r"module 'bert\.\S+' \(Linear\) is not reached by autograd"):
        fold(Detached().eval(), torch.randint(0, 100, (1, 6)), 0.5)


def test_genxr_format_refuses_a_corrupt_or_foreign_folder(tmp_path):
    model = build("bert")
    folded, _ = fold(model, hf.example_inputs(model), 0.5)
    hf.save_pretrained(folded, tmp_path / "ok")
    weights = tmp_path / "ok" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(hf.HFFormatError, match="sha256 does not match"):
        hf.load_pretrained(tmp_path / "ok")
    hf.save_pretrained(folded, tmp_path / "foreign")
    config = json.loads((tmp_path / "foreign" / "config.json").read_text())
    config["class"] = "os.system"
    (tmp_path / "foreign" / "config.json").write_text(json.dumps(config))
    with pytest.raises(hf.HFFormatError, match=r"class = 'os.system' is not a transformers model class"):
        hf.load_pretrained(tmp_path / "foreign")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(hf.HFFormatError, match="has a Hugging Face config.json but no weights"):
        hf.load_pretrained(tmp_path / "bare")
