"""Only pseudonymous, folder-safe participant ids are accepted."""

from __future__ import annotations

import pytest

from genxr.evaluation.study.participants import ParticipantIdError, validate_participant_id


@pytest.mark.parametrize("good", ["P07", "P1234"])
def test_codes_are_accepted(good):
    assert validate_participant_id(good) == good


@pytest.mark.parametrize("bad, message", [
    ("../P07", "'/', '..' and spaces are refused"),
    ("P07/../../etc", "'/', '..' and spaces are refused"),
    ("P 07", "'/', '..' and spaces are refused"),
    ("", "at most 32 characters"),
    ("Anna", "looks like it contains a name"),
    ("P07_Smith", "looks like it contains a name \\('Smith'\\)"),
    ("Q07", "does not match the protocol's participant_id_pattern"),
])
def test_traversal_names_and_foreign_patterns_are_refused(bad, message):
    with pytest.raises(ParticipantIdError, match=message):
        validate_participant_id(bad)


def test_a_protocol_pattern_is_enforced_on_top_of_the_safety_rules():
    assert validate_participant_id("S12-b", r"S\d+-[a-z]") == "S12-b"
    with pytest.raises(ParticipantIdError, match="looks like it contains a name"):
        validate_participant_id("S12-bob", r"S\d+-[a-z]+")
