"""Protocols validate with errors that name the line, check condition configs against
GenXRConfig, choose each condition's world with the session's own world names, and say
which conditions need parts of genxr that do not exist yet."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("name", ["generated_reality", "avatar_eye_contact", "folding", "synthetic"])
def test_every_shipped_protocol_is_runnable_and_study_new_refuses_none(name, tmp_path):
    protocol = load_protocol(PROTOCOLS / f"{name}.yaml")
    assert missing_parts(protocol) == {}, "every condition of a shipped protocol uses parts that ship"
    create_study(PROTOCOLS / f"{name}.yaml", tmp_path / "study")
    for condition in protocol.conditions:
        protocol.config_for(condition)


def test_generated_realitys_conditions_are_the_hand_conditioned_and_head_only_students():
    protocol = load_protocol(PROTOCOLS / "generated_reality.yaml")
    worlds = {c.name: protocol.config_for(c).session.world for c in protocol.conditions}
    assert worlds == {"hand_conditioned": "student", "head_only": "student_head_only", "ground_truth": "ground_truth"}
    assert [q.name for q in protocol.questionnaires] == ["agency", "ipq", "nasa_tlx", "ssq"]
    assert protocol.questionnaire_named("ssq").when == "around_session"


def test_a_condition_world_is_the_world_its_sessions_run(tmp_path):
    from genxr.xr_runtime.session import make_world, world_kind

    two_worlds = SYNTHETIC.replace("  - name: slow_world\n",
                                   "  - name: slow_world\n    settings: {world_model: ground_truth}\n")
    protocol = parse_protocol(two_worlds)
    assert missing_parts(protocol) == {}
    fast, slow = (protocol.config_for(protocol.condition(name), seed=2) for name in ("fast_world", "slow_world"))
    assert (fast.session.world, slow.session.world) == ("student", "ground_truth"), "hand_conditioned is the default"
    assert (world_kind(fast), world_kind(slow)) == ("student", "ground_truth")
    assert make_world(slow)[0] == "ground_truth" and make_world(fast)[0] == DEFAULT_STUDENT
    create_study(io_file(tmp_path, two_worlds), tmp_path / "study")


def test_the_older_settings_world_spelling_is_read_as_world_model():
    protocol = parse_protocol(SYNTHETIC.replace("  - name: slow_world\n",
                                                "  - name: slow_world\n    settings: {world: student_head_only}\n"))
    assert protocol.condition("slow_world").settings.world_model == "head_only"
    with pytest.raises(ProtocolError, match=r"world = 'teacher': the older spelling of world_model takes"):
        parse_protocol(SYNTHETIC.replace("  - name: slow_world\n", "  - name: slow_world\n    settings: {world: teacher}\n"))


def test_condition_worlds_are_session_worlds_and_only_settings_choose_them():
    from typing import get_args

    from genxr.evaluation.study.protocol import WORLD_MODELS, ConditionSettings
    from genxr.platform.config import SessionConfig

    assert set(WORLD_MODELS.values()) == set(get_args(SessionConfig.model_fields["world"].annotation)) - {"auto"}
    assert set(WORLD_MODELS) == set(get_args(ConditionSettings.model_fields["world_model"].annotation))
    with pytest.raises(ProtocolError, match=r"protocol.yaml:13: (.|\n)*config.session.world is chosen by "
                                            r"settings.world_model"):
        parse_protocol(SYNTHETIC.replace("config: {session: {world_rate_hz: 4,",
                                         "config: {session: {world: ground_truth, world_rate_hz: 4,"), "protocol.yaml")
    with pytest.raises(ProtocolError, match=r"config.session.world_rate_hz and settings.world_rate_hz set the same "
                                            r"thing"):
        parse_protocol(SYNTHETIC.replace("  - name: slow_world\n",
                                         "  - name: slow_world\n    settings: {world_rate_hz: 8.0}\n"))


@pytest.mark.parametrize("settings, message", [
    ("{world_model: ground_truth, fold: 0.3}", "fold = 0.3 folds a world-model student; world_model 'ground_truth'"),
    ("{world_model: frozen, fold: 0.0}", "world_model 'frozen' has none to fold"),
    ("{avatar: false, avatar_eye_contact: 2.0}", "avatar_eye_contact = 2.0 changes the avatar, which avatar: false"),
    ("{avatar: false, avatar_spatial: false}", "avatar_spatial = False changes the avatar"),
    ("{fold: 1.0}", "settings.fold = 1.0: Input should be less than 1"),
    ("{world_model: student}", "settings.world_model = 'student': Input should be"),
    ("{added_latency_ms: -5.0}", "settings.added_latency_ms = -5.0: Input should be greater than or equal to 0"),
    ("{world_rate_hz: true}", "settings.world_rate_hz = True: Input should be a valid number"),
])
def test_a_setting_that_would_change_nothing_or_is_out_of_range_is_refused(settings, message):
    with pytest.raises(ProtocolError, match=re.escape(message)):
        parse_protocol(SYNTHETIC.replace("  - name: slow_world\n", f"  - name: slow_world\n    settings: {settings}\n"))


def test_each_setting_is_the_session_config_it_names():
    protocol = parse_protocol(SYNTHETIC.replace("  - name: slow_world\n", (
        "  - name: slow_world\n    settings: {world_model: head_only, fold: 0.3, avatar_eye_contact: 2.5, "
        "avatar_spatial: false, added_latency_ms: 40.0}\n")).replace("avatar: false}, display: {width: 64, height: 64}}\n"
                                                                 "tasks", "avatar: true}, display: {width: 64, "
                                                                          "height: 64}}\ntasks"))
    config = protocol.config_for(protocol.condition("slow_world"))
    assert (config.session.world, config.session.world_fold, config.session.avatar_guidance_scale,
            config.session.avatar_spatial, config.display.added_latency_ms) == ("student_head_only", 0.3, 2.5, False, 40.0)


def test_world_model_v2_is_a_condition_that_names_the_command_training_it_while_unshipped(tmp_path, monkeypatch):
    import genxr.components.worldmodel.checkpoint as worldmodel_checkpoint

    monkeypatch.setattr(worldmodel_checkpoint, "CHECKPOINT_ROOT", tmp_path)
    protocol = parse_protocol(SYNTHETIC.replace("  - name: slow_world\n",
                                                "  - name: slow_world\n    settings: {world_model: pixel_unet}\n"))
    with pytest.raises(ProtocolError, match="condition 'slow_world': settings.world_model = 'pixel_unet'"):
        protocol.config_for(protocol.condition("slow_world"))
    assert missing_parts(protocol)["slow_world"] == [
        f"settings.world_model = 'pixel_unet': world model v2 is not shipped (no checkpoint at {tmp_path / 'pixel'}); "
        "`genxr train worldmodel-pixel --preset cpu --ship` writes it"]
    with pytest.raises(ProtocolError, match="world_model 'pixel_unet' has none to fold"):
        parse_protocol(SYNTHETIC.replace("  - name: slow_world\n",
                                         "  - name: slow_world\n    settings: {world_model: pixel_unet, fold: 0.3}\n"))


def test_a_student_world_without_its_checkpoint_is_refused(tmp_path, monkeypatch):
    import genxr.components.worldmodel.checkpoint as worldmodel_checkpoint

    monkeypatch.setattr(worldmodel_checkpoint, "CHECKPOINT_ROOT", tmp_path)
    missing = missing_parts(load_protocol(PROTOCOLS / "generated_reality.yaml"))
    assert missing["hand_conditioned"] == [f"settings.world_model = 'hand_conditioned': no world-model checkpoint at "
                                           f"{tmp_path / 'student'} (with its codec at {tmp_path / 'codec'}); "
                                           "`genxr train worldmodel-student --ship` writes it"]
    assert "genxr train worldmodel-student --head-only --ship" in missing["head_only"][0]
    assert "ground_truth" not in missing
    with pytest.raises(StudyError, match=r"do not exist yet(.|\n)*  head_only: settings.world_model = 'head_only'"):
        create_study(PROTOCOLS / "generated_reality.yaml", tmp_path / "study")
    assert not (tmp_path / "study").exists()
    protocol = load_protocol(PROTOCOLS / "generated_reality.yaml")
    with pytest.raises(ProtocolError, match="condition 'head_only': settings.world_model = 'head_only': no "):
        protocol.config_for(protocol.condition("head_only"))


def test_standard_instruments_are_named_and_bring_their_published_items():
    protocol = parse_protocol(SYNTHETIC.replace("questionnaires:\n", "questionnaires:\n  - sus\n"
                                                "  - {instrument: ssq, when: around_session}\n  - nasa_tlx_weighted\n"))
    sus, ssq, tlx = (protocol.questionnaire_named(name) for name in ("sus", "ssq", "nasa_tlx_weighted"))
    assert len(sus.items) == 10 and [i.reverse for i in sus.items[:2]] == [False, True]
    assert len(ssq.items) == 16 and {i.scale for i in ssq.items} == {4}
    assert {i.kind for i in tlx.items} == {"likert", "choice"} and max(i.scale for i in tlx.items) == 21
    assert [q.name for q in protocol.questionnaires_at("before_session")] == ["ssq"]
    assert "ssq" not in [q.name for q in protocol.questionnaires_at("after_condition")]
    with pytest.raises(ProtocolError, match="unknown instrument|known"):
        parse_protocol(SYNTHETIC.replace("questionnaires:\n", "questionnaires:\n  - iqp\n"))
    with pytest.raises(ProtocolError, match="instrument 'sus' brings its own published items"):
        parse_protocol(SYNTHETIC.replace("questionnaires:\n", "questionnaires:\n  - {instrument: sus, items: "
                                                               "[{id: a, text: b}]}\n"))


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
    assert "talk_to_avatar task talk: session.avatar is false" in missing_parts(parse_protocol(talk))["fast_world"][0]
    with_avatar = talk.replace("avatar: false", f"avatar_checkpoint: '{tmp_path}'")
    assert missing_parts(parse_protocol(with_avatar))["slow_world"] == [
        f"talk_to_avatar task talk: no avatar checkpoint at {tmp_path} (train one with `genxr train avatar --preset cpu`, "
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


def test_a_talk_task_with_agent_lines_is_a_live_conversation_and_other_tasks_refuse_lines(tmp_path):
    from genxr.evaluation.study.runner import _conversation

    protocol = load_protocol(PROTOCOLS / "avatar_eye_contact.yaml")
    talk = protocol.tasks[0]
    assert talk.agent_lines[0].text.startswith("Hello") and talk.user_lines
    person = _conversation(talk, "openxr", tmp_path / "01-a")["audio"]
    assert (person["conversation"], person["input"], person["output"]) == ("live", "microphone", "speakers")
    simulated = _conversation(talk, "sim", tmp_path / "01-a")["audio"]
    assert (simulated["input"], simulated["output"]) == ("wav", "none")
    assert Path(simulated["input_wav"]).stat().st_size > 44, "the simulated participant's lines, spoken"
    config = protocol.config_for(protocol.conditions[0], {"audio": simulated})
    assert config.audio.conversation == "live" and len(config.audio.agent_lines) == 4
    with pytest.raises(ProtocolError, match="agent_lines and user_lines are a talk_to_avatar task's conversation"):
        parse_protocol(SYNTHETIC.replace("{name: press, kind: press_button, seconds: 1.5,",
                                         "{name: press, kind: press_button, seconds: 1.5, agent_lines: [{at_s: 0, "
                                         "text: hi}],"))
