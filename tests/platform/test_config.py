"""Configuration: presets layer over defaults, files over presets, GENXR_* env over files,
keyword overrides over everything; invalid values fail at load naming the field."""

from __future__ import annotations

import pytest

from genxr.platform.config import ConfigError, available_presets, load_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("GENXR_")]:
        monkeypatch.delenv(name)


def test_default_preset_is_the_embedded_default():
    config = load_config()
    assert config.session.source == "sim"
    assert config.session.display_rate_hz == 90
    assert config.bus.backend == "inproc"
    assert {"default", "headset", "quick"} <= set(available_presets())


def test_presets_layer_over_default():
    quick = load_config("quick")
    assert quick.session.duration_s == 2 and quick.session.display_rate_hz == 90
    assert load_config("headset").session.source == "openxr"


def test_file_env_and_overrides_take_precedence_in_that_order(tmp_path, monkeypatch):
    path = tmp_path / "lab.yaml"
    path.write_text("session:\n  display_rate_hz: 120\n  duration_s: 30\nbus:\n  workers: 2\n")
    assert load_config(file=path).session.display_rate_hz == 120
    monkeypatch.setenv("GENXR_SESSION__DISPLAY_RATE_HZ", "72")
    config = load_config(file=path)
    assert config.session.display_rate_hz == 72 and config.session.duration_s == 30 and config.bus.workers == 2
    config = load_config(file=path, session={"duration_s": 5})
    assert config.session.duration_s == 5 and config.session.display_rate_hz == 72


def test_invalid_env_value_names_field_and_value(monkeypatch):
    monkeypatch.setenv("GENXR_SESSION__DISPLAY_RATE_HZ", "-3")
    with pytest.raises(ConfigError, match=r"session\.display_rate_hz = '-3': Input should be greater than 0"):
        load_config()


def test_misspelt_field_in_a_file_is_named(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("session:\n  sourc: sim\n")
    with pytest.raises(ConfigError, match=r"session\.sourc = 'sim': Extra inputs are not permitted"):
        load_config(file=path)


def test_unknown_choice_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"bus\.backend = 'zeromq'"):
        load_config(bus={"backend": "zeromq"})


def test_replay_without_a_path_is_explained():
    with pytest.raises(ConfigError, match="source 'replay' needs session.replay_path"):
        load_config(session={"source": "replay"})


def test_unknown_preset_missing_file_and_broken_yaml_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'turbo'; available: default, headset, quick"):
        load_config("turbo")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(file=tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("session: [\n")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(file=broken)


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(Exception, match="frozen"):
        config.session.seed = 3
