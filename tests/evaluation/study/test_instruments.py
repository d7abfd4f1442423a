"""Standard instruments score worked examples by their published rules and refuse bad answers by item."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from genxr.evaluation.study.instruments import (
    INSTRUMENTS,
    TLX_DIMENSIONS,
    TLX_PAIR_ORDER,
    InstrumentError,
    InstrumentItem,
    get_instrument,
    ssq_difference,
)

IPQ, SSQ, SUS, AGENCY = (INSTRUMENTS[name] for name in ("ipq", "ssq", "sus", "agency"))
TLX, TLX_WEIGHTED = INSTRUMENTS["nasa_tlx"], INSTRUMENTS["nasa_tlx_weighted"]


def uniform(instrument, answer: int) -> dict[str, int]:
    return {item.id: answer for item in instrument.items}


def sus_answers(*values: int) -> dict[str, int]:
    return {f"SUS{number}": value for number, value in enumerate(values, start=1)}


def test_the_registry_holds_exactly_the_six_instruments_with_their_published_item_counts():
    counts = {name: len(instrument.items) for name, instrument in INSTRUMENTS.items()}
    assert counts == {"ipq": 14, "ssq": 16, "nasa_tlx": 6, "nasa_tlx_weighted": 21, "sus": 10, "agency": 5}
    assert get_instrument("sus") is SUS
    with pytest.raises(InstrumentError, match=r"unknown instrument 'presence'; known: agency, ipq, nasa_tlx, "
                                              r"nasa_tlx_weighted, ssq, sus"):
        get_instrument("presence")


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_every_instrument_returns_exactly_its_documented_scores(name):
    instrument = INSTRUMENTS[name]
    assert list(instrument.score(uniform(instrument, 2))) == list(instrument.scores)
    assert all(item.points >= 2 and len(item.anchors) == 2 for item in instrument.items)


# --- IPQ ------------------------------------------------------------------------------------

def test_ipq_items_and_reverse_keying_follow_igroup():
    assert [item.id for item in IPQ.items] == ["G1", "SP1", "SP2", "SP3", "SP4", "SP5", "INV1", "INV2", "INV3",
                                               "INV4", "REAL1", "REAL2", "REAL3", "REAL4"]
    assert {item.id for item in IPQ.items if item.reverse} == {"SP2", "INV3", "REAL1"}
    assert all(item.points == 7 for item in IPQ.items)


def test_ipq_hand_computed_example():
    # hand-computed: coded answer - 1 (0..6); SP2, INV3, REAL1 reversed (8 - answer) first
    answers = {"G1": 6, "SP1": 6, "SP2": 2, "SP3": 5, "SP4": 7, "SP5": 5, "INV1": 3, "INV2": 4, "INV3": 5,
               "INV4": 6, "REAL1": 3, "REAL2": 4, "REAL3": 2, "REAL4": 1}
    assert IPQ.score(answers) == pytest.approx({
        "general": 5.0,
        "spatial_presence": (5 + 5 + 4 + 6 + 4) / 5,  # 4.8
        "involvement": (2 + 3 + 2 + 5) / 4,  # 3.0
        "experienced_realism": (4 + 3 + 1 + 0) / 4,  # 2.0
    })


def test_ipq_range_ends_need_the_reversed_items_answered_the_other_way():
    most = {item.id: 1 if item.reverse else 7 for item in IPQ.items}
    least = {item.id: 7 if item.reverse else 1 for item in IPQ.items}
    assert set(IPQ.score(most).values()) == {6.0}
    assert set(IPQ.score(least).values()) == {0.0}
    all_sevens = IPQ.score(uniform(IPQ, 7))
    assert all_sevens["spatial_presence"] == pytest.approx((4 * 6 + 0) / 5)  # SP2 reversed to 0


def test_ipq_reverse_keyed_item_lowers_its_subscale_when_agreed_with():
    base = {item.id: 4 for item in IPQ.items}
    agreed = IPQ.score({**base, "SP2": 7})["spatial_presence"]
    disagreed = IPQ.score({**base, "SP2": 1})["spatial_presence"]
    assert disagreed - agreed == pytest.approx(6 / 5)


# --- SSQ ------------------------------------------------------------------------------------

def test_ssq_membership_follows_the_kennedy_table():
    members = {subscale: [item.id for item in SSQ.items if subscale in item.subscales]
               for subscale in ("nausea", "oculomotor", "disorientation")}
    assert {subscale: len(ids) for subscale, ids in members.items()} == {"nausea": 7, "oculomotor": 7,
                                                                         "disorientation": 7}
    assert {item.id for item in SSQ.items if len(item.subscales) == 2} == {
        "general_discomfort", "difficulty_focusing", "nausea", "difficulty_concentrating", "blurred_vision"}
    assert set(members["disorientation"]) == {"difficulty_focusing", "nausea", "fullness_of_head", "blurred_vision",
                                              "dizzy_eyes_open", "dizzy_eyes_closed", "vertigo"}


def test_ssq_hand_computed_example_with_kennedy_weights():
    # hand-computed: answers 1..4 -> 0..3; symptoms not listed are "none" (1)
    answers = {**uniform(SSQ, 1), "general_discomfort": 2, "fatigue": 3, "headache": 2, "eyestrain": 3,
               "difficulty_focusing": 2, "nausea": 2, "dizzy_eyes_open": 2}
    # raw N = discomfort 1 + nausea 1 = 2; O = discomfort 1 + fatigue 2 + headache 1 + eyestrain 2 + focusing 1 = 7;
    # D = focusing 1 + nausea 1 + dizzy (open) 1 = 3
    assert SSQ.score(answers) == pytest.approx({"nausea": 2 * 9.54, "oculomotor": 7 * 7.58,
                                                "disorientation": 3 * 13.92, "total": 12 * 3.74})


def test_ssq_range_ends():
    assert SSQ.score(uniform(SSQ, 1)) == {"nausea": 0.0, "oculomotor": 0.0, "disorientation": 0.0, "total": 0.0}
    # every subscale has 7 symptoms at 3: raw 21 each, total raw 63
    assert SSQ.score(uniform(SSQ, 4)) == pytest.approx({"nausea": 200.34, "oculomotor": 159.18,
                                                        "disorientation": 292.32, "total": 235.62})


def test_ssq_difference_is_post_minus_pre_per_score():
    pre = uniform(SSQ, 1)
    post = {**pre, "nausea": 3, "vertigo": 4}  # nausea 2 (N and D), vertigo 3 (D)
    assert ssq_difference(pre, post) == pytest.approx({"nausea": 2 * 9.54, "oculomotor": 0.0,
                                                       "disorientation": 5 * 13.92, "total": 7 * 3.74})
    assert ssq_difference(post, pre)["total"] == pytest.approx(-7 * 3.74)
    with pytest.raises(InstrumentError, match=r"item 'vertigo': answer 5 is outside 1..4"):
        ssq_difference(pre, {**post, "vertigo": 5})


# --- NASA-TLX -------------------------------------------------------------------------------

TLX_EXAMPLE = {"mental_demand": 15, "physical_demand": 3, "temporal_demand": 11, "performance": 7, "effort": 13,
               "frustration": 5}  # ratings 70, 10, 50, 30, 60, 20


def test_raw_tlx_hand_computed_example_and_tick_mapping():
    scores = TLX.score(TLX_EXAMPLE)
    assert scores == pytest.approx({"mental_demand": 70, "physical_demand": 10, "temporal_demand": 50,
                                    "performance": 30, "effort": 60, "frustration": 20, "raw_tlx": 40})
    assert TLX.score(uniform(TLX, 1))["raw_tlx"] == 0.0
    assert TLX.score(uniform(TLX, 21))["raw_tlx"] == 100.0
    performance = next(item for item in TLX.items if item.id == "performance")
    assert performance.anchors == ("perfect", "failure") and not performance.reverse


def test_tlx_pairs_compare_every_two_dimensions_once():
    assert len(TLX_PAIR_ORDER) == 15
    assert {frozenset(pair) for pair in TLX_PAIR_ORDER} == {frozenset(pair)
                                                           for pair in itertools.combinations(TLX_DIMENSIONS, 2)}
    pair_items = [item for item in TLX_WEIGHTED.items if item.id not in TLX_DIMENSIONS]
    assert all(item.points == 2 for item in pair_items)
    assert pair_items[0].id == "effort_vs_performance" and pair_items[0].anchors == ("Effort", "Performance")


def test_weighted_tlx_hand_computed_example():
    # hand-computed: the participant always prefers mental > effort > temporal > performance > frustration > physical,
    # so the weights are 5, 0, 3, 2, 4, 1 (sum 15)
    choices = {"effort_vs_performance": 1, "temporal_demand_vs_frustration": 1, "temporal_demand_vs_effort": 2,
               "physical_demand_vs_frustration": 2, "performance_vs_frustration": 1,
               "physical_demand_vs_temporal_demand": 2, "physical_demand_vs_performance": 2,
               "temporal_demand_vs_mental_demand": 2, "frustration_vs_effort": 2, "performance_vs_mental_demand": 2,
               "performance_vs_temporal_demand": 2, "mental_demand_vs_effort": 1,
               "mental_demand_vs_physical_demand": 1, "effort_vs_physical_demand": 1,
               "frustration_vs_mental_demand": 2}
    scores = TLX_WEIGHTED.score({**TLX_EXAMPLE, **choices})
    weights = {dimension: scores[f"weight_{dimension}"] for dimension in TLX_DIMENSIONS}
    assert weights == {"mental_demand": 5, "physical_demand": 0, "temporal_demand": 3, "performance": 2,
                       "effort": 4, "frustration": 1}
    # (70*5 + 10*0 + 50*3 + 30*2 + 60*4 + 20*1) / 15 = 820 / 15
    assert scores["weighted_tlx"] == pytest.approx(820 / 15)
    assert scores["raw_tlx"] == pytest.approx(40)


def test_weighted_tlx_weights_sum_to_15_and_its_range_ends():
    rng = np.random.default_rng(0)
    for _ in range(20):
        answers = {item.id: int(rng.integers(1, item.points + 1)) for item in TLX_WEIGHTED.items}
        scores = TLX_WEIGHTED.score(answers)
        assert sum(scores[f"weight_{dimension}"] for dimension in TLX_DIMENSIONS) == 15
        assert 0 <= scores["weighted_tlx"] <= 100
    lowest = {**uniform(TLX_WEIGHTED, 1)}
    highest = {**uniform(TLX_WEIGHTED, 2), **{dimension: 21 for dimension in TLX_DIMENSIONS}}
    assert TLX_WEIGHTED.score(lowest)["weighted_tlx"] == 0.0
    assert TLX_WEIGHTED.score(highest)["weighted_tlx"] == pytest.approx(100.0)


# --- SUS ------------------------------------------------------------------------------------

def test_sus_published_example_scores_55():
    # published example: Brooke's sample SUS as reproduced in Tullis & Albert, Measuring the User Experience
    # (2013), Fig. 6.8: contributions 4, 1, 1, 4, 1, 2, 1, 1, 4, 3 -> total 22 -> SUS 22 x 2.5 = 55
    # (odd items answer - 1, even items 5 - answer give these answers)
    assert SUS.score(sus_answers(5, 4, 2, 1, 2, 3, 2, 4, 5, 2)) == {"sus": 55.0}


def test_sus_range_ends_and_centre():
    assert SUS.score(sus_answers(5, 1, 5, 1, 5, 1, 5, 1, 5, 1)) == {"sus": 100.0}
    assert SUS.score(sus_answers(1, 5, 1, 5, 1, 5, 1, 5, 1, 5)) == {"sus": 0.0}
    assert SUS.score(uniform(SUS, 3)) == {"sus": 50.0}
    assert [item.reverse for item in SUS.items] == [False, True] * 5


# --- agency ---------------------------------------------------------------------------------

def test_agency_hand_computed_example():
    # hand-computed: VEQ control/agency = mean of CO1..CO4; perceived control is its own item
    answers = {"CO1": 6, "CO2": 7, "CO3": 5, "CO4": 4, "perceived_control": 3}
    assert AGENCY.score(answers) == {"agency": 5.5, "perceived_control": 3.0}
    assert AGENCY.score(uniform(AGENCY, 1)) == {"agency": 1.0, "perceived_control": 1.0}
    assert AGENCY.score(uniform(AGENCY, 7)) == {"agency": 7.0, "perceived_control": 7.0}


def test_reverse_keyed_item_scores_points_plus_one_minus_answer():
    item = InstrumentItem("r", "A reversed statement.", 7, ("disagree", "agree"), reverse=True)
    assert [item.keyed(answer) for answer in (1, 4, 7)] == [7, 4, 1]
    assert InstrumentItem("k", "Kept.", 7, ("disagree", "agree")).keyed(2) == 2


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "problem"), [
    (0, r"answer 0 is outside 1..5"), (6, r"answer 6 is outside 1..5"), (-1, r"answer -1 is outside 1..5"),
    (True, r"answer True is not an integer 1..5"), ("4", r"answer '4' is not an integer 1..5"),
    (3.0, r"answer 3.0 is not an integer 1..5"), (None, r"answer None is not an integer 1..5"),
])
def test_bad_answers_are_refused_naming_the_item_and_value(value, problem):
    with pytest.raises(InstrumentError, match=rf"sus .*\nitem 'SUS4': {problem}"):
        SUS.score({**uniform(SUS, 3), "SUS4": value})


def test_missing_answers_are_refused_and_every_problem_is_listed():
    answers = uniform(IPQ, 4)
    del answers["REAL3"]
    with pytest.raises(InstrumentError, match=r"item 'REAL3': answer missing") as raised:
        IPQ.score({**answers, "SP2": 9})
    assert "item 'SP2': answer 9 is outside 1..7" in str(raised.value)
    with pytest.raises(InstrumentError, match=r"answers must map item ids to integers, got list"):
        IPQ.score([4] * 14)


def test_numpy_integers_are_answers_and_other_items_are_ignored():
    answers = {**{item.id: np.int64(3) for item in SUS.items}, "comments": "fine"}
    assert SUS.score(answers) == {"sus": 50.0}


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"id": "bad id"}, r"item id 'bad id'"), ({"points": 1}, r"points 1 must be an integer >= 2"),
    ({"points": True}, r"points True"), ({"anchors": ("low",)}, r"anchors \('low',\)"),
    ({"text": " "}, r"text ' ' must be non-empty"),
])
def test_malformed_items_are_refused(kwargs, problem):
    fields = {"id": "x", "text": "A statement.", "points": 5, "anchors": ("low", "high"), **kwargs}
    with pytest.raises(InstrumentError, match=problem):
        InstrumentItem(**fields)
