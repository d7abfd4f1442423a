"""``GENXR_`` environment variables: one that names no section is reported on stderr (pydantic-
settings would ignore it silently), naming it and the sections; a misspelt field of a known
section is an error; a session length must be finite."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from genxr.platform.config import ConfigError, ConfigWarning, load_config, unknown_env_vars


def test_a_misspelt_section_is_warned_about_naming_the_variable_and_the_sections(monkeypatch):
    monkeypatch.setenv("GENXR_SESION__SEED", "3")
    with pytest.warns(ConfigWarning) as caught:
        config = load_config()
    message = str(caught[0].message)
    assert "GENXR_SESION__SEED" in message and "did you mean 'session'" in message
    assert "session, display, bus, tracing, runtime, audio, output_dir" in message
    assert config.session.seed == 0, "and it is not applied"


def test_the_warning_reaches_stderr_of_a_genxr_process():
    code = "from genxr.platform.config import load_config; load_config()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"GENXR_DISPALY__HUD": "true", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "GENXR_DISPALY__HUD is ignored" in done.stderr


def test_settings_and_other_genxr_variables_raise_no_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("GENXR_SESSION__SEED", "3")
    monkeypatch.setenv("genxr_bus__workers", "2")
    monkeypatch.setenv("GENXR_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("GENXR_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        config = load_config()
    assert config.session.seed == 3 and config.bus.workers == 2 and config.output_dir == tmp_path
    assert unknown_env_vars({"GENXR_TRACING__ENABLED": "1", "GENXR_BUSS__BACKEND": "ray", "HOME": "/"}) == [
        ("GENXR_BUSS__BACKEND", "no section 'buss' (did you mean 'bus'?)")]


def test_a_misspelt_field_of_a_known_section_is_an_error(monkeypatch):
    monkeypatch.setenv("GENXR_SESSION__SEDD", "3")
    with pytest.raises(ConfigError, match=r"session\.sedd"):
        load_config()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_non_finite_session_length_is_refused_naming_the_field(monkeypatch, value):
    with pytest.raises(ConfigError, match=r"session\.duration_s"):
        load_config(session={"duration_s": float(value)})
    monkeypatch.setenv("GENXR_SESSION__DURATION_S", value)
    with pytest.raises(ConfigError, match=r"session\.duration_s"):
        load_config()
