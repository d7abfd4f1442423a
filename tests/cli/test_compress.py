"""``genxr fold`` / ``genxr prune`` on checkpoints."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.compression.research.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.cli import said
from tests.helpers.compression import tiny_model

runner = CliRunner()


def test_fold_and_prune_commands_write_reloadable_checkpoints(tmp_path):
    model, _ = tiny_model("vit")
    save_checkpoint(model, tmp_path / "base")
    for command, extra in (("fold", ["--repair", "auto"]), ("prune", ["--criterion", "l1"])):
        result = runner.invoke(app, [command, str(tmp_path / "base"), "--ratio", "0.5", "--out", str(tmp_path / command), *extra])
        assert result.exit_code == 0, result.output
        loaded, config = load_checkpoint(tmp_path / command)
        report = json.loads((tmp_path / command / "report.json").read_text())
        assert report["param_reduction"] > 0.2
        assert config["metadata"]["compression"]["method"].startswith(command)
        assert loaded(torch.zeros(1, 3, 16, 16)).shape == (1, 10)


def test_bad_ratio_and_missing_checkpoint_exit_with_a_message(tmp_path):
    model, _ = tiny_model("resnet18")
    save_checkpoint(model, tmp_path / "base")
    result = runner.invoke(app, ["fold", str(tmp_path / "base"), "--ratio", "1.2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "ratio must be in [0, 1)" in said(result.stderr)
    assert not (tmp_path / "o").exists()
    result = runner.invoke(app, ["prune", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"{tmp_path / 'nothing'} is not a genxr checkpoint" in said(result.stderr)


def _hf_folder(path, family: str):
    """A tiny random Hugging Face model saved with save_pretrained (plus a stand-in tokenizer file)."""
    import transformers as T

    torch.manual_seed(0)
    if family == "llama":
        model = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=100, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                                 intermediate_size=96, num_hidden_layers=2))
    elif family == "bert":
        model = T.BertModel(T.BertConfig(vocab_size=100, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                                         num_hidden_layers=2))
    else:
        model = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=100, n_embd=64, n_head=4, n_layer=2, n_positions=32))
    model.save_pretrained(path)
    (path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return model


def test_fold_and_prune_accept_a_hugging_face_folder(tmp_path):
    import transformers as T

    from genxr.compression import hf

    _hf_folder(tmp_path / "llama", "llama")
    result = runner.invoke(app, ["prune", str(tmp_path / "llama"), "--ratio", "0.5", "--out", str(tmp_path / "pruned")])
    assert result.exit_code == 0, result.output
    assert "heads    model.layers.0.self_attn: 2 -> 1" in result.stdout
    assert "skipped  lm_head: channels reach the model output (no consumer)" in result.stdout
    assert "parameters 74,560 -> " in said(result.stdout) and "Hugging Face format" in said(result.stderr)
    pruned = T.LlamaForCausalLM.from_pretrained(tmp_path / "pruned", local_files_only=True)
    assert pruned.config.num_key_value_heads == 1 and pruned.config.intermediate_size == 48
    assert pruned.generate(torch.zeros(1, 3, dtype=torch.long), max_new_tokens=4, do_sample=False).shape == (1, 7)
    assert json.loads((tmp_path / "pruned" / "report.json").read_text())["method"] == "prune-l2"
    assert (tmp_path / "pruned" / "vocab.txt").read_text() == "[PAD]\n[UNK]\n"

    _hf_folder(tmp_path / "bert", "bert")
    result = runner.invoke(app, ["fold", str(tmp_path / "bert"), "--ratio", "0.5", "--out", str(tmp_path / "folded")])
    assert result.exit_code == 0, result.output
    assert "expected-activation" in result.stdout and "genxr format" in said(result.stderr)
    folded = hf.load_pretrained(tmp_path / "folded")
    assert folded.encoder.layer[0].attention.self.num_attention_heads == 2
    assert folded(input_ids=torch.zeros(1, 5, dtype=torch.long)).last_hidden_state.shape == (1, 5, 64)
    # a folded folder folds again
    result = runner.invoke(app, ["prune", str(tmp_path / "folded"), "--ratio", "0.5", "--out", str(tmp_path / "again")])
    assert result.exit_code == 0 and "heads    encoder.layer.0.attention: 2 -> 1" in result.stdout


def test_bad_hugging_face_input_exits_with_one_line(tmp_path):
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    result = runner.invoke(app, ["fold", str(tmp_path / "bare"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "has a Hugging Face config.json but no weights" in said(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    _hf_folder(tmp_path / "gpt2", "gpt2")
    result = runner.invoke(app, ["fold", str(tmp_path / "gpt2"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "attention module 'transformer.h.0.attn' has a layout genxr cannot compress by heads" in said(result.stderr)
    result = runner.invoke(app, ["fold", str(tmp_path / "gpt2"), "--no-attention", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0 and "attention of unknown layout, left whole" in result.stdout
    result = runner.invoke(app, ["prune", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "nor a Hugging Face model folder" in said(result.stderr)


def test_bench_lists_fold_pretrained():
    result = runner.invoke(app, ["bench", "fold-pretrained", "--help"])
    assert result.exit_code == 0 and "--ratios" in result.stdout
