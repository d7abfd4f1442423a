"""Protocols validate with errors that name the line, check condition configs against
GenXRConfig, choose each condition's world with the session's own world names, and say
which conditions need parts of genxr that do not exist yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from genxr.evaluation.study.protocol import ProtocolError, load_protocol, missing_parts, parse_protocol
from genxr.evaluation.study.store import StudyError, create_study
from tests.helpers.worlds import DEFAULT_STUDENT

PROTOCOLS = Path(__file__).parents[3] / "genxr" / "evaluation" / "study" / "protocols"
SYNTHETIC = (PROTOCOLS / "synthetic.yaml").read_text()


def test_the_shipped_synthetic_protocol_is_valid_and_runnable():
    protocol = load_protocol(PROTOCOLS / "synthetic.yaml")
    assert [c.name for c in protocol.conditions] == ["fast_world", "slow_world"]
    assert missing_parts(protocol) == {}
    config = protocol.config_for(protocol.condition("slow_world"), seed=3)
    assert config.session.world_rate_hz == 4 and config.session.seed == 3 and config.display.width == 64
    items = protocol.questionnaires[0].items
    assert items[0].id == "perceived_control" and items[0].scale == 7


def test_conditions_needing_unbuilt_parts_are_named_and_the_study_is_refused(tmp_path):
    protocol = load_protocol(PROTOCOLS / "generated_reality.yaml")
    missing = missing_parts(protocol)
    assert set(missing) == {"head_only", "hand_conditioned_folded", "avatar_eye_contact"}, \
        "the hand-conditioned student ships and is what the session runs, so that condition is not refused"
    assert missing["head_only"] == [
        "settings.world = 'student_head_only': no head-only student ships (the world-model checkpoints hold "
        "a head-only teacher, teacher_head_only, which is not chunk-causal and cannot stream in a session)"]
    assert missing["hand_conditioned_folded"][0].startswith("settings.folded = true: the session serves the "
                                                            "shipped student unfolded")
    assert missing["avatar_eye_contact"][0].startswith("settings.avatar_eye_contact = 2.0: the session runs the "
                                                       "avatar at its default eye-contact guidance")
    assert not any("no avatar checkpoint" in need for needs in missing.values() for need in needs), \
        "the avatar's checkpoint ships, so the talk task is not what is missing"
    assert not any("issue" in need for needs in missing.values() for need in needs)
    with pytest.raises(StudyError, match=r"do not exist yet(.|\n)*  head_only: settings.world = 'student_head_only'"):
        create_study(PROTOCOLS / "generated_reality.yaml", tmp_path / "study")
    assert not (tmp_path / "study").exists()


def test_a_condition_world_is_the_world_its_sessions_run(tmp_path):
    from genxr.xr_runtime.session import make_world, world_kind

    two_worlds = SYNTHETIC.replace("  - name: slow_world\n", "  - name: slow_world\n    settings: {world: ground_truth}\n")
    protocol = parse_protocol(two_worlds)
    assert missing_parts(protocol) == {}
    fast, slow = (protocol.config_for(protocol.condition(name), seed=2) for name in ("fast_world", "slow_world"))
    assert (fast.session.world, slow.session.world) == ("student", "ground_truth"), "student is the default"
    assert (world_kind(fast), world_kind(slow)) == ("student", "ground_truth")
    assert make_world(slow)[0] == "ground_truth" and make_world(fast)[0] == DEFAULT_STUDENT
    create_study(io_file(tmp_path, two_worlds), tmp_path / "study")


def test_condition_worlds_are_the_session_worlds_and_only_settings_choose_them():
    from typing import get_args

    from genxr.evaluation.study.protocol import SESSION_WORLDS, ConditionSettings
    from genxr.platform.config import SessionConfig

    assert set(SESSION_WORLDS) == set(get_args(SessionConfig.model_fields["world"].annotation)) - {"auto"}
    assert set(SESSION_WORLDS) < set(get_args(ConditionSettings.model_fields["world"].annotation))
    with pytest.raises(ProtocolError, match=r"protocol.yaml:13: (.|\n)*config.session.world is chosen by "
                                            r"settings.world"):
        parse_protocol(SYNTHETIC.replace("config: {session: {world_rate_hz: 4,",
                                         "config: {session: {world: ground_truth, world_rate_hz: 4,"), "protocol.yaml")
    with pytest.raises(ProtocolError, match=r"settings.world_model(.|\n)*Extra inputs are not permitted"):
        parse_protocol(SYNTHETIC.replace("  - name: slow_world\n",
                                         "  - name: slow_world\n    settings: {world_model: head_only}\n"))


def test_a_student_world_without_its_checkpoint_is_refused(tmp_path, monkeypatch):
    import genxr.components.worldmodel.checkpoint as worldmodel_checkpoint

    monkeypatch.setattr(worldmodel_checkpoint, "CHECKPOINT_ROOT", tmp_path)
    missing = missing_parts(load_protocol(PROTOCOLS / "synthetic.yaml"))
    assert missing["fast_world"] == [f"settings.world = 'student': no world-model student checkpoint at "
                                     f"{tmp_path / 'student'} (with its codec at {tmp_path / 'codec'})"]


def test_a_world_the_session_cannot_run_has_no_session_config():
    protocol = load_protocol(PROTOCOLS / "generated_reality.yaml")
    with pytest.raises(ProtocolError, match="condition 'head_only': settings.world = 'student_head_only': no "
                                            "head-only student ships"):
        protocol.config_for(protocol.condition("head_only"))


def io_file(folder: Path, text: str) -> Path:
    (folder / "protocol.yaml").write_text(text)
    return folder / "protocol.yaml"


@pytest.mark.parametrize("bad, line, message", [
    ("name: [unclosed", 1, "malformed YAML"),
    (SYNTHETIC.replace("trials_per_condition: 1", "trials_per_condition: 0"), 6,
     "trials_per_condition = 0: Input should be greater than or equal to 1"),
    (SYNTHETIC.replace("kind: press_button", "kind: press_buton"), 15, "tasks.0.kind = 'press_buton'"),
    (SYNTHETIC.replace("scale: 7}\n  - name: agency", "scale: 70}\n  - name: agency"), 20,
     "questionnaires.0.items.0.scale = 70"),
    (SYNTHETIC.replace("config: {session: {world_rate_hz: 4,", "config: {sesion: {world_rate_hz: 4,"), 13,
     "unknown config section 'sesion'"),
    (SYNTHETIC.replace("world_rate_hz: 4,", "world_rate_hz: -4,"), 13,
     "condition 'slow_world' config: (.|\n)*session.world_rate_hz = -4: Input should be greater than 0"),
    (SYNTHETIC.replace("name: slow_world", "name: fast_world"), 3, "conditions names must be unique"),
    ("- just\n- a list\n", 1, "a protocol is a YAML mapping"),
])
def test_bad_protocols_name_the_line_and_the_value(bad, line, message):
    with pytest.raises(ProtocolError, match=rf"protocol.yaml:{line}: (.|\n)*{message}"):
        parse_protocol(bad, "protocol.yaml")


def test_a_talk_task_needs_an_avatar_checkpoint_and_an_experimenter(tmp_path):
    talk = SYNTHETIC.replace("  - {name: carry, kind: grasp_and_move, seconds: 2.1,",
                             "  - {name: talk, kind: talk_to_avatar, seconds: 5, success: experimenter}\n"
                             "  - {name: carry, kind: grasp_and_move, seconds: 2.1,")
    assert "talk_to_avatar: session.avatar is false" in missing_parts(parse_protocol(talk))["fast_world"][0]
    with_avatar = talk.replace("avatar: false", f"avatar_checkpoint: '{tmp_path}'")
    assert missing_parts(parse_protocol(with_avatar))["slow_world"] == [
        f"talk_to_avatar: no avatar checkpoint at {tmp_path} (train one with `genxr train avatar --preset cpu`, "
        "or set session.avatar_checkpoint)"]
    (tmp_path / "config.json").write_text("{}")
    assert missing_parts(parse_protocol(with_avatar)) == {}
    with pytest.raises(ProtocolError, match="simulator cannot judge talk_to_avatar; set success: experimenter"):
        parse_protocol(talk.replace("success: experimenter", "success: simulator"))


def test_unknown_condition_names_and_unreadable_files_fail_clearly(tmp_path):
    protocol = parse_protocol(SYNTHETIC)
    with pytest.raises(ProtocolError, match="unknown condition 'medium'; the protocol has: fast_world, slow_world"):
        protocol.condition("medium")
    with pytest.raises(ProtocolError, match="cannot read the protocol"):
        load_protocol(tmp_path / "absent.yaml")


def test_a_study_folder_is_never_overwritten(tmp_path):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "data.csv").write_text("precious")
    with pytest.raises(StudyError, match="never overwritten"):
        create_study(PROTOCOLS / "synthetic.yaml", tmp_path / "study")
    assert (tmp_path / "study" / "data.csv").read_text() == "precious"
