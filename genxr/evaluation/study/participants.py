"""Pseudonymous participant ids: the only participant identifier a study stores.

An id must fully match the protocol's ``participant_id_pattern`` (default ``P\\d{1,4}``),
and regardless of the pattern: at most 32 characters of ``A-Z a-z 0-9 _ -`` (so it is a
safe folder name - no ``/``, ``..`` or spaces), and no run of three or more letters (a
name or initials-plus-name such as ``Anna`` or ``P07_Smith``; codes like ``P07`` or
``S12-b`` are fine).
"""

from __future__ import annotations

import re

_SAFE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NAME_LIKE = re.compile(r"[A-Za-z]{3,}")


class ParticipantIdError(ValueError):
    """An id that is not a pseudonymous code; the message says which rule it breaks."""


def validate_participant_id(participant: str, pattern: str = r"P\d{1,4}") -> str:
    """Returns ``participant`` if it is an acceptable pseudonymous id, else raises :class:`ParticipantIdError`."""
    if not _SAFE.fullmatch(participant):
        raise ParticipantIdError(
            f"participant id {participant!r} may only use A-Z, a-z, 0-9, '_' and '-' (at most 32 characters): "
            "it becomes a folder name, so '/', '..' and spaces are refused")
    if _NAME_LIKE.search(participant):
        raise ParticipantIdError(
            f"participant id {participant!r} looks like it contains a name ({_NAME_LIKE.search(participant).group()!r}); "
            "studies store pseudonymous codes only, e.g. P07")
    if not re.fullmatch(pattern, participant):
        raise ParticipantIdError(f"participant id {participant!r} does not match the protocol's "
                                 f"participant_id_pattern {pattern!r}")
    return participant
