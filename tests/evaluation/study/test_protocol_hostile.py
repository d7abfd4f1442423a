"""A hostile or careless protocol file is refused with a ProtocolError naming the file, line,
field and value: never silently reinterpreted, never a crash, never unbounded time or memory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genxr.evaluation.study.participants import validate_participant_id
from genxr.evaluation.study.protocol import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_PROTOCOL_CHARS,
    ProtocolError,
    load_protocol,
    parse_protocol,
    pattern_problem,
)

PROTOCOLS = Path(__file__).parents[3] / "genxr" / "evaluation" / "study" / "protocols"
SYNTHETIC = (PROTOCOLS / "synthetic.yaml").read_text()
SLOW_CONFIG = "    config: {session: {world_rate_hz: 4, avatar: false}, display: {width: 64, height: 64}}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(write(tmp_path, text))
    return str(caught.value)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    starts = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    return starts[occurrence - 1]


def test_a_repeated_key_is_refused_not_silently_last_wins(tmp_path):
    top = SYNTHETIC.replace("base_preset: quick\n", "base_preset: quick\nbase_preset: default\n")
    message = refused(tmp_path, top)
    assert f"hostile.yaml:{line_of(top, 'base_preset', 2)}: base_preset = 'default': duplicate key 'base_preset' " \
           f"(first at line {line_of(top, 'base_preset')})" in message
    nested = SYNTHETIC.replace("seconds: 1.5,", "seconds: 1.5, seconds: 600,")
    message = refused(tmp_path, nested)
    assert f"hostile.yaml:{line_of(nested, 'seconds: 600')}: tasks.0.seconds = '600': duplicate key 'seconds'" \
           in message
    spelled = SYNTHETIC.replace("trials_per_condition: 1\n", "trials_per_condition: 1\n0x1: a\n1: b\n")
    assert "duplicate key '1'" in refused(tmp_path, spelled), "keys compare as values: 0x1 and 1 are one key"


def test_a_section_that_is_not_a_mapping_is_refused_not_crashed_on(tmp_path):
    text = SYNTHETIC.replace(SLOW_CONFIG, "    config: {session: fast}\n")
    message = refused(tmp_path, text)
    assert f"hostile.yaml:{line_of(text, 'session: fast')}: conditions.1.config.session = 'fast': " \
           "Input should be a valid dictionary" in message
    result = CliRunner().invoke(_app(), ["study", "new", str(tmp_path / "hostile.yaml"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
    assert "conditions.1.config.session = 'fast'" in " ".join(result.stderr.split())
    assert not (tmp_path / "s").exists()
    settings = SYNTHETIC.replace("  - name: slow_world\n", "  - name: slow_world\n    settings: ground_truth\n")
    assert "conditions.1.settings = 'ground_truth': Input should be a valid dictionary" in refused(tmp_path, settings)


def _app():
    from genxr.cli.app import app

    return app


BOMB_LEVELS = 9
"""10 aliases per level: ~10**9 values once expanded, from a few hundred bytes."""


def billion_laughs() -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, BOMB_LEVELS + 1)]
    return SYNTHETIC.replace("conditions:\n", "\n".join(lines) + "\nconditions:\n")


@pytest.mark.timeout(120)
def test_an_alias_bomb_is_refused_at_the_alias_in_bounded_time_and_memory(tmp_path):
    # In a child process capped at 512 MiB of address space and 60 s: the unbounded loader
    # (which expanded every alias, ~200 MB/s) fails there with MemoryError, never here.
    path = write(tmp_path, billion_laughs())
    assert path.stat().st_size - len(SYNTHETIC) < 1000, "the bomb itself is a few hundred bytes"
    child = textwrap.dedent(f"""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
        from genxr.evaluation.study.protocol import ProtocolError, load_protocol
        start = time.perf_counter()
        try:
            load_protocol({str(path)!r})
            print(json.dumps({{"refused": None}}))
        except ProtocolError as err:
            print(json.dumps({{"refused": str(err), "s": time.perf_counter() - start}}))
    """)
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    refusal = json.loads(run.stdout)["refused"]
    assert refusal is not None
    levels = [line_of(billion_laughs(), f"lol{i}: ") for i in range(BOMB_LEVELS + 1)]
    assert re.match(rf"{re.escape(str(path))}:(\d+): lol\d\.\d = \*lol\d: the protocol would hold more than "
                    rf"{MAX_NODES} values with its aliases expanded", refusal), refusal
    assert int(refusal.split(":")[1]) in levels[3:5], "stopped at the alias that crossed the limit, not at the end"


def test_aliases_that_stay_small_still_work(tmp_path):
    text = (SYNTHETIC.replace("    config: {session: {world_rate_hz: 30,",
                              "    config: &fast {session: {world_rate_hz: 30,")
            .replace(SLOW_CONFIG, "    config: {<<: *fast, session: {world_rate_hz: 4, avatar: false}}\n"))
    protocol = load_protocol(write(tmp_path, text))
    slow = protocol.config_for(protocol.condition("slow_world"))
    assert slow.session.world_rate_hz == 4 and slow.display.width == 64, "merged from the anchor, overridden by key"


def test_a_recursive_alias_is_refused(tmp_path):
    text = SYNTHETIC.replace("conditions:\n", "loop: &loop [*loop]\nconditions:\n")
    assert f"hostile.yaml:{line_of(text, 'loop:')}: loop.0 = *loop: the alias is inside its own anchor &loop " \
           "(a recursive structure)" in refused(tmp_path, text)
    mapping = SYNTHETIC.replace("conditions:\n", "loop: &loop {again: *loop}\nconditions:\n")
    assert "loop.again = *loop: the alias is inside its own anchor" in refused(tmp_path, mapping)


def test_deep_nesting_is_refused_before_it_recurses(tmp_path):
    deep = SYNTHETIC + "notes: " + "[" * 5000 + "]" * 5000 + "\n"
    message = refused(tmp_path, deep)
    assert f"hostile.yaml:{line_of(deep, 'notes:')}: notes{'.0' * (MAX_DEPTH - 1)} = [...]: values nested " \
           f"{MAX_DEPTH + 1} levels deep" in message
    through_aliases = SYNTHETIC.replace("conditions:\n", "a: &a " + "[" * 15 + "]" * 15 + "\nb: [[[[[[[[*a]]]]]]]]\n"
                                        "conditions:\n")
    assert "b.0.0.0.0.0.0.0.0 = *a: values nested 24 levels deep" in refused(tmp_path, through_aliases), \
        "8 levels to the alias + the 15 of its anchor + the file's"


@pytest.mark.parametrize("old, new, field, value, message", [
    ("seconds: 1.5,", "seconds: true,", "tasks.0.seconds", "True", "Input should be a valid number"),
    ("seconds: 1.5,", "seconds: '3',", "tasks.0.seconds", "'3'", "Input should be a valid number"),
    ("trials_per_condition: 1\n", "trials_per_condition: true\n", "trials_per_condition", "True",
     "Input should be a valid integer"),
    ("scale: 7}", "scale: yes}", "questionnaires.0.items.0.scale", "True", "Input should be a valid integer"),
    ("reverse: true}", "reverse: 1}", "questionnaires.2.items.1.reverse", "1", "Input should be a valid boolean"),
    ("  - name: slow_world\n", "  - name: slow_world\n    settings: {avatar_spatial: 'yes'}\n",
     "conditions.1.settings.avatar_spatial", "'yes'", "Input should be a valid boolean"),
    ("  - name: slow_world\n", "  - name: slow_world\n    settings: {fold: '0.3'}\n",
     "conditions.1.settings.fold", "'0.3'", "Input should be a valid number"),
    ("  - name: slow_world\n", "  - name: slow_world\n    settings: {avatar_eye_contact: true}\n",
     "conditions.1.settings.avatar_eye_contact", "True", "Input should be a valid number"),
])
def test_booleans_are_not_numbers_and_strings_are_neither(tmp_path, old, new, field, value, message):
    text = SYNTHETIC.replace(old, new, 1)
    needle = new.strip().split("\n")[-1].strip(" ,}")
    assert f"hostile.yaml:{line_of(text, needle)}: {field} = {value}: {message}" in refused(tmp_path, text)


CATASTROPHIC = [r"(\d+)+x", r"(\d|\d\d)*x", r"(a|a)*b", r"(\w*)*-", r"\d*\d*\d*\d*\d*\d*x", r"(?:[0-9]+)+x"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_participant_id_pattern_that_can_backtrack_is_refused(tmp_path, pattern):
    text = SYNTHETIC.replace("participant_id_pattern: 'P\\d{2}'", f"participant_id_pattern: '{pattern}'")
    assert f"hostile.yaml:{line_of(text, 'participant_id_pattern')}: participant_id_pattern = {pattern!r}: " \
           in refused(tmp_path, text)


SAFE = [r"P\d{1,4}", r"P\d{2}", r"S\d+-[a-z]", r"S\d+-[a-z]+", r"P\d{2}|Q\d{3}", r"(P|S)\d{2,}", r"P\d{2}|P\d{2}-[a-z]",
        r"[A-Z]\d*_?[a-z]"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_are_accepted_and_match_any_id_in_linear_time(pattern):
    assert pattern_problem(pattern) == ""
    # the worst ids for a backtracking matcher: long runs that almost match, 32 characters (the most an id has)
    for run in ("0", "1", "_", "-", "P", "S", "0-", "P0"):
        for end in ("", "x", "-", "0", "!"):
            candidate = (run * 32)[:31] + end
            try:
                validate_participant_id(candidate[:32], pattern)
            except ValueError:
                pass


def test_the_default_and_shipped_patterns_stay_valid():
    for name in ("synthetic.yaml", "generated_reality.yaml"):
        load_protocol(PROTOCOLS / name)
    assert pattern_problem(r"P\d{1,4}") == ""


def test_an_oversized_or_unreadable_file_is_refused_without_reading_it_all(tmp_path):
    big = SYNTHETIC + ("# padding\n" * (MAX_PROTOCOL_CHARS // 10 + 1))
    assert f"(file) = {len(big)} characters: a protocol is at most {MAX_PROTOCOL_CHARS}" in refused(tmp_path, big)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.write(b"#" * (8 * MAX_PROTOCOL_CHARS))
    with pytest.raises(ProtocolError, match="huge.yaml:1: \\(file\\) = 4000001 characters"):
        load_protocol(huge)
    digits = SYNTHETIC.replace("trials_per_condition: 1\n", "trials_per_condition: 1" + "0" * 5000 + "\n")
    assert f"hostile.yaml:{line_of(digits, 'trials_per_condition')}: malformed YAML: '1000" in refused(tmp_path, digits)
    (tmp_path / "latin1.yaml").write_bytes(SYNTHETIC.encode() + b"name2: caf\xe9\n")
    with pytest.raises(ProtocolError, match=r"latin1.yaml:\d+: \(file\): not UTF-8 text"):
        load_protocol(tmp_path / "latin1.yaml")


def test_parse_protocol_names_its_source_too():
    with pytest.raises(ProtocolError, match=r"^inline.yaml:4: name = 'again': duplicate key 'name'"):
        parse_protocol(SYNTHETIC.replace("base_preset: quick\n", "name: again\nbase_preset: quick\n"), "inline.yaml")
