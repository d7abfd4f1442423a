"""Standard questionnaire instruments, scored by their published rules.

An :class:`Instrument` holds a published questionnaire - its items as the authors worded
them in English, and the authors' own scoring rule (:meth:`Instrument.score`). Every answer
is an integer ``1..points`` of its item, as a protocol's likert items are answered; how those
integers map onto each instrument's published coding is said below. :data:`INSTRUMENTS`
holds them by name, :func:`get_instrument` looks one up.

=====================  ===========================================================================
name                   scores (keys of :meth:`Instrument.score`, units)
=====================  ===========================================================================
``ipq``                ``general``, ``spatial_presence``, ``involvement``, ``experienced_realism``
                       (item means, 0..6)
``ssq``                ``nausea``, ``oculomotor``, ``disorientation``, ``total`` (weighted, 0..)
``nasa_tlx``           the six ratings (0..100) and ``raw_tlx`` (their mean, 0..100)
``nasa_tlx_weighted``  as ``nasa_tlx``, plus ``weight_<dimension>`` (0..5, summing to 15) and
                       ``weighted_tlx`` (0..100)
``sus``                ``sus`` (0..100)
``agency``             ``agency`` (1..7) and ``perceived_control`` (1..7)
=====================  ===========================================================================

Sources followed, per instrument:

* ``ipq`` - igroup Presence Questionnaire (Schubert, Friedmann & Regenbrecht 2001), English
  items and keying as distributed at igroup.org: 14 items on 7 points; the igroup SPSS syntax
  codes answers 0..6 and reverses SP2, INV3 and REAL1 as ``6 - x`` (SP3 and INV1 are *not*
  reversed: their printed anchors already put "present"/"not aware" at 7). Here an answer
  ``a`` is coded ``a - 1`` (0..6; subtract 3 for the paper's -3..+3 coding). Subscale scores are
  item means; G1 is reported alone as ``general``. The authors define no overall IPQ score,
  so none is given.
* ``ssq`` - Simulator Sickness Questionnaire (Kennedy, Lane, Berbaum & Lilienthal 1993): 16
  symptoms rated none/slight/moderate/severe = 0..3 (answer ``a`` -> ``a - 1``); membership
  per the paper's weight table (seven symptoms per subscale, five in two subscales); scores
  are the raw subscale sums x 9.54 (N), x 7.58 (O), x 13.92 (D) and total = (N + O + D raw)
  x 3.74. :func:`ssq_difference` gives post - pre around a session.
* ``nasa_tlx`` / ``nasa_tlx_weighted`` - NASA Task Load Index (Hart & Staveland 1988) with the
  wording, 21-tick scales and the 15 "sources of workload" pairs of the NASA TLX Paper and
  Pencil Package (Hart, NASA Ames 1986). A rating's answer ``a`` (1..21) is ``(a - 1) x 5``
  (0..100); performance runs "perfect" (0) to "failure" (100) and is not reversed. Raw TLX
  (Hart 2006) is the mean of the six ratings. The weighted instrument adds the 15 pairs as
  2-point items (1 = the first-named dimension, 2 = the second); a dimension's weight is the
  times it was chosen and ``weighted_tlx`` = sum(rating x weight) / 15. The manual asks
  for the pairs in random order; the order here is the package's.
* ``sus`` - System Usability Scale (Brooke 1996): 10 items on 5 points; odd items contribute
  ``a - 1``, even items ``5 - a`` (here: even items are reverse-keyed), ``sus`` = sum x 2.5.
* ``agency`` - the Control/Agency factor of the Virtual Embodiment Questionnaire (Roth &
  Latoschik 2020; items CO1-CO4 and their scoring, mean of the four, from the authors' VEQ
  site), 7 points, none reverse-keyed, plus ``perceived_control``: the Generated Reality
  user study (Xie et al. 2026) reports a 7-point Likert rating of the perceived amount of
  control over the performed actions, but its item wording was not found, so that item's
  text is written here from that description; it is scored alone, not in ``agency``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral

ID_PATTERN = re.compile(r"[A-Za-z0-9_]{1,64}")
"""An item id, as a protocol's item ids are written."""

NAME_PATTERN = re.compile(r"[a-z0-9_]{1,64}")
"""An instrument's name (its key in :data:`INSTRUMENTS`)."""

SUBSCALE_JOIN = "+"
"""Joins the subscales of an item scored in more than one (:attr:`InstrumentItem.subscales`)."""


class InstrumentError(ValueError):
    """An unknown instrument, a malformed item, or answers it cannot score; the message names
    the instrument, the item id and the offending value."""


@dataclass(frozen=True)
class InstrumentItem:
    """One published item.

    ``points``: answers are the integers ``1..points``; ``anchors``: the labels of 1 and of
    ``points``; ``reverse``: scored as ``points + 1 - answer`` before the instrument's coding;
    ``subscale``: the subscale it is scored in (None: scored on its own rule), several joined
    by :data:`SUBSCALE_JOIN` for an item scored in more than one (SSQ).
    """

    id: str
    text: str
    points: int
    anchors: tuple[str, str]
    reverse: bool = False
    subscale: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not ID_PATTERN.fullmatch(self.id):
            raise InstrumentError(f"item id {self.id!r}: use 1-64 letters, digits or underscores")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InstrumentError(f"item {self.id!r}: text {self.text!r} must be non-empty")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 2:
            raise InstrumentError(f"item {self.id!r}: points {self.points!r} must be an integer >= 2")
        if (not isinstance(self.anchors, tuple) or len(self.anchors) != 2
                or not all(isinstance(a, str) and a for a in self.anchors)):
            raise InstrumentError(f"item {self.id!r}: anchors {self.anchors!r} must be two non-empty labels")
        if not isinstance(self.reverse, bool):
            raise InstrumentError(f"item {self.id!r}: reverse {self.reverse!r} must be True or False")
        if self.subscale is not None and (not isinstance(self.subscale, str) or not self.subscale):
            raise InstrumentError(f"item {self.id!r}: subscale {self.subscale!r} must be a name or None")

    @property
    def subscales(self) -> tuple[str, ...]:
        """The subscales this item is scored in (empty when ``subscale`` is None)."""
        return tuple(self.subscale.split(SUBSCALE_JOIN)) if self.subscale else ()

    def keyed(self, answer: int) -> int:
        """``answer``, or ``points + 1 - answer`` for a reverse-keyed item (1..points)."""
        return self.points + 1 - answer if self.reverse else answer


ScoringRule = Callable[[tuple[InstrumentItem, ...], Mapping[str, int]], dict[str, float]]
"""An instrument's published rule: (its items, item id -> keyed answer) -> score name -> value."""


@dataclass(frozen=True)
class Instrument:
    """A published questionnaire and its scoring rule.

    ``scores``: the keys :meth:`score` returns, in order; ``rule``: computes them from the
    keyed answers (reverse-keyed items already reversed). See the module docstring for each
    instrument's scores and their units.
    """

    name: str
    title: str
    citation: str
    items: tuple[InstrumentItem, ...]
    instructions: str
    scores: tuple[str, ...]
    rule: ScoringRule = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise InstrumentError(f"instrument name {self.name!r}: use 1-64 lower-case letters, digits or underscores")
        if not self.items or not all(isinstance(item, InstrumentItem) for item in self.items):
            raise InstrumentError(f"instrument {self.name!r}: items must be a non-empty tuple of InstrumentItem")
        ids = [item.id for item in self.items]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise InstrumentError(f"instrument {self.name!r}: item ids must be unique; repeated: {', '.join(repeated)}")
        if not self.scores:
            raise InstrumentError(f"instrument {self.name!r}: scores must name at least one score")

    def score(self, answers: Mapping[str, int]) -> dict[str, float]:
        """The published scores (:attr:`scores`, in order) of one participant's ``answers``
        (item id -> integer 1..points; ids of other items are ignored).

        :class:`InstrumentError` names every item whose answer is missing, not an integer
        (a bool is not one) or outside ``1..points``, with the value given.
        """
        if not isinstance(answers, Mapping):
            raise InstrumentError(f"{self.name}: answers must map item ids to integers, got {type(answers).__name__}")
        problems = []
        keyed: dict[str, int] = {}
        for item in self.items:
            if item.id not in answers:
                problems.append(f"item {item.id!r}: answer missing (an integer 1..{item.points})")
                continue
            value = answers[item.id]
            if isinstance(value, bool) or not isinstance(value, Integral):
                problems.append(f"item {item.id!r}: answer {value!r} is not an integer 1..{item.points}")
            elif not 1 <= int(value) <= item.points:
                problems.append(f"item {item.id!r}: answer {value!r} is outside 1..{item.points}")
            else:
                keyed[item.id] = item.keyed(int(value))
        if problems:
            raise InstrumentError(f"{self.name} ({self.title}) cannot be scored:\n" + "\n".join(problems))
        result = self.rule(self.items, keyed)
        return {key: float(result[key]) for key in self.scores}


def _subscale_means(items: tuple[InstrumentItem, ...], keyed: Mapping[str, int], offset: int) -> dict[str, float]:
    """Per subscale, the mean of its items' ``keyed - offset``."""
    members: dict[str, list[int]] = {}
    for item in items:
        for subscale in item.subscales:
            members.setdefault(subscale, []).append(keyed[item.id] - offset)
    return {subscale: sum(values) / len(values) for subscale, values in members.items()}


def _subscale_sums(items: tuple[InstrumentItem, ...], keyed: Mapping[str, int], offset: int) -> dict[str, int]:
    """Per subscale, the sum of its items' ``keyed - offset``."""
    sums: dict[str, int] = {}
    for item in items:
        for subscale in item.subscales:
            sums[subscale] = sums.get(subscale, 0) + keyed[item.id] - offset
    return sums


# --- IPQ ------------------------------------------------------------------------------------

IPQ_POINTS = 7
"""IPQ answers are 1..7, coded 0..6 (``answer - 1``)."""

_AGREE = ("fully disagree", "fully agree")

_IPQ_ITEMS = (
    InstrumentItem("G1", 'In the computer generated world I had a sense of "being there".', IPQ_POINTS,
                   ("not at all", "very much"), subscale="general"),
    InstrumentItem("SP1", "Somehow I felt that the virtual world surrounded me.", IPQ_POINTS, _AGREE,
                   subscale="spatial_presence"),
    InstrumentItem("SP2", "I felt like I was just perceiving pictures.", IPQ_POINTS, _AGREE, reverse=True,
                   subscale="spatial_presence"),
    InstrumentItem("SP3", "I did not feel present in the virtual space.", IPQ_POINTS,
                   ("did not feel", "felt present"), subscale="spatial_presence"),
    InstrumentItem("SP4", "I had a sense of acting in the virtual space, rather than operating something from "
                   "outside.", IPQ_POINTS, _AGREE, subscale="spatial_presence"),
    InstrumentItem("SP5", "I felt present in the virtual space.", IPQ_POINTS, _AGREE, subscale="spatial_presence"),
    InstrumentItem("INV1", "How aware were you of the real world surrounding while navigating in the virtual world? "
                   "(i.e. sounds, room temperature, other people, etc.)?", IPQ_POINTS,
                   ("extremely aware", "not aware at all"), subscale="involvement"),
    InstrumentItem("INV2", "I was not aware of my real environment.", IPQ_POINTS, _AGREE, subscale="involvement"),
    InstrumentItem("INV3", "I still paid attention to the real environment.", IPQ_POINTS, _AGREE, reverse=True,
                   subscale="involvement"),
    InstrumentItem("INV4", "I was completely captivated by the virtual world.", IPQ_POINTS, _AGREE,
                   subscale="involvement"),
    InstrumentItem("REAL1", "How real did the virtual world seem to you?", IPQ_POINTS,
                   ("completely real", "not real at all"), reverse=True, subscale="experienced_realism"),
    InstrumentItem("REAL2", "How much did your experience in the virtual environment seem consistent with your real "
                   "world experience?", IPQ_POINTS, ("not consistent", "very consistent"),
                   subscale="experienced_realism"),
    InstrumentItem("REAL3", "How real did the virtual world seem to you?", IPQ_POINTS,
                   ("about as real as an imagined world", "indistinguishable from the real world"),
                   subscale="experienced_realism"),
    InstrumentItem("REAL4", "The virtual world seemed more realistic than the real world.", IPQ_POINTS, _AGREE,
                   subscale="experienced_realism"),
)

IPQ = Instrument(
    name="ipq", title="igroup Presence Questionnaire (IPQ)",
    citation="Schubert, T., Friedmann, F., & Regenbrecht, H. (2001). The experience of presence: Factor analytic "
             "insights. Presence: Teleoperators and Virtual Environments, 10(3), 266-281. "
             "https://doi.org/10.1162/105474601300343603 (items and keying: igroup.org/pq/ipq)",
    items=_IPQ_ITEMS,
    instructions="Now you'll see some statements about experiences. Please indicate whether or not each statement "
                 "applies to your experience. You can use the whole range of answers. There are no right or wrong "
                 "answers; only your opinion counts. Some questions are very similar to each other; this is "
                 "necessary for statistical reasons. Answer all questions only referring to this one experience.",
    scores=("general", "spatial_presence", "involvement", "experienced_realism"),
    rule=lambda items, keyed: _subscale_means(items, keyed, offset=1),
)

# --- SSQ ------------------------------------------------------------------------------------

SSQ_POINTS = 4
"""SSQ answers 1..4 are none, slight, moderate, severe, coded 0..3 (``answer - 1``)."""

SSQ_WEIGHTS = {"nausea": 9.54, "oculomotor": 7.58, "disorientation": 13.92}
"""Kennedy et al. (1993): each subscale's raw sum times its weight."""

SSQ_TOTAL_WEIGHT = 3.74
"""Kennedy et al. (1993): total = (nausea + oculomotor + disorientation raw sums) x 3.74."""

_SSQ_SYMPTOMS = (  # (id, symptom, subscales) in the paper's order
    ("general_discomfort", "General discomfort", "nausea+oculomotor"),
    ("fatigue", "Fatigue", "oculomotor"),
    ("headache", "Headache", "oculomotor"),
    ("eyestrain", "Eyestrain", "oculomotor"),
    ("difficulty_focusing", "Difficulty focusing", "oculomotor+disorientation"),
    ("increased_salivation", "Increased salivation", "nausea"),
    ("sweating", "Sweating", "nausea"),
    ("nausea", "Nausea", "nausea+disorientation"),
    ("difficulty_concentrating", "Difficulty concentrating", "nausea+oculomotor"),
    ("fullness_of_head", "Fullness of head", "disorientation"),
    ("blurred_vision", "Blurred vision", "oculomotor+disorientation"),
    ("dizzy_eyes_open", "Dizzy (eyes open)", "disorientation"),
    ("dizzy_eyes_closed", "Dizzy (eyes closed)", "disorientation"),
    ("vertigo", "Vertigo", "disorientation"),
    ("stomach_awareness", "Stomach awareness", "nausea"),
    ("burping", "Burping", "nausea"),
)


def _score_ssq(items: tuple[InstrumentItem, ...], keyed: Mapping[str, int]) -> dict[str, float]:
    raw = _subscale_sums(items, keyed, offset=1)
    scores = {subscale: raw[subscale] * weight for subscale, weight in SSQ_WEIGHTS.items()}
    scores["total"] = sum(raw[subscale] for subscale in SSQ_WEIGHTS) * SSQ_TOTAL_WEIGHT
    return scores


SSQ = Instrument(
    name="ssq", title="Simulator Sickness Questionnaire (SSQ)",
    citation="Kennedy, R. S., Lane, N. E., Berbaum, K. S., & Lilienthal, M. G. (1993). Simulator Sickness "
             "Questionnaire: An enhanced method for quantifying simulator sickness. The International Journal of "
             "Aviation Psychology, 3(3), 203-220. https://doi.org/10.1207/s15327108ijap0303_3",
    items=tuple(InstrumentItem(symptom_id, symptom, SSQ_POINTS, ("none", "severe"), subscale=subscales)
                for symptom_id, symptom, subscales in _SSQ_SYMPTOMS),
    instructions="Rate how much each symptom below is affecting you right now: 1 none, 2 slight, 3 moderate, "
                 "4 severe.",
    scores=("nausea", "oculomotor", "disorientation", "total"),
    rule=_score_ssq,
)


def ssq_difference(pre: Mapping[str, int], post: Mapping[str, int]) -> dict[str, float]:
    """Post - pre of every SSQ score (:data:`SSQ`) for the answers given before and after a
    session (each item id -> 1..4); positive values mean more sickness after."""
    before, after = SSQ.score(pre), SSQ.score(post)
    return {key: after[key] - before[key] for key in SSQ.scores}


# --- NASA-TLX -------------------------------------------------------------------------------

TLX_POINTS = 21
"""A TLX rating scale has 21 ticks: answer 1..21 is the rating ``(answer - 1) x`` :data:`TLX_STEP`."""

TLX_STEP = 5
"""Rating units per tick: ratings are 0..100 in steps of 5."""

TLX_PAIRS = 15
"""Pairwise comparisons of the six dimensions; the weights sum to this."""

TLX_DIMENSIONS = ("mental_demand", "physical_demand", "temporal_demand", "performance", "effort", "frustration")
"""The six rating scales (item and score ids), in the rating sheet's order."""

_LOW_HIGH = ("very low", "very high")

_TLX_RATINGS = (
    InstrumentItem("mental_demand", "Mental Demand: How mentally demanding was the task?", TLX_POINTS, _LOW_HIGH,
                   subscale="mental_demand"),
    InstrumentItem("physical_demand", "Physical Demand: How physically demanding was the task?", TLX_POINTS,
                   _LOW_HIGH, subscale="physical_demand"),
    InstrumentItem("temporal_demand", "Temporal Demand: How hurried or rushed was the pace of the task?", TLX_POINTS,
                   _LOW_HIGH, subscale="temporal_demand"),
    InstrumentItem("performance", "Performance: How successful were you in accomplishing what you were asked to do?",
                   TLX_POINTS, ("perfect", "failure"), subscale="performance"),
    InstrumentItem("effort", "Effort: How hard did you have to work to accomplish your level of performance?",
                   TLX_POINTS, _LOW_HIGH, subscale="effort"),
    InstrumentItem("frustration", "Frustration: How insecure, discouraged, irritated, stressed, and annoyed were you?",
                   TLX_POINTS, _LOW_HIGH, subscale="frustration"),
)

_TLX_LABELS = {"mental_demand": "Mental Demand", "physical_demand": "Physical Demand",
               "temporal_demand": "Temporal Demand", "performance": "Performance", "effort": "Effort",
               "frustration": "Frustration"}

TLX_PAIR_ORDER = (
    ("effort", "performance"), ("temporal_demand", "frustration"), ("temporal_demand", "effort"),
    ("physical_demand", "frustration"), ("performance", "frustration"), ("physical_demand", "temporal_demand"),
    ("physical_demand", "performance"), ("temporal_demand", "mental_demand"), ("frustration", "effort"),
    ("performance", "mental_demand"), ("performance", "temporal_demand"), ("mental_demand", "effort"),
    ("mental_demand", "physical_demand"), ("effort", "physical_demand"), ("frustration", "mental_demand"),
)
"""The 15 sources-of-workload pairs (first-named, second-named) of the Paper and Pencil Package;
a pair's item id is ``<first>_vs_<second>``, answered 1 for the first, 2 for the second."""

_TLX_PAIR_ITEMS = tuple(
    InstrumentItem(f"{first}_vs_{second}", f"Which was the more important contributor to the workload of the task: "
                   f"{_TLX_LABELS[first]} or {_TLX_LABELS[second]}?", 2, (_TLX_LABELS[first], _TLX_LABELS[second]))
    for first, second in TLX_PAIR_ORDER)


def _tlx_ratings(keyed: Mapping[str, int]) -> dict[str, float]:
    """The six ratings (0..100) and raw_tlx, their mean."""
    ratings = {dimension: float((keyed[dimension] - 1) * TLX_STEP) for dimension in TLX_DIMENSIONS}
    return {**ratings, "raw_tlx": sum(ratings.values()) / len(ratings)}


def _score_weighted_tlx(items: tuple[InstrumentItem, ...], keyed: Mapping[str, int]) -> dict[str, float]:
    scores = _tlx_ratings(keyed)
    weights = dict.fromkeys(TLX_DIMENSIONS, 0)
    for first, second in TLX_PAIR_ORDER:
        weights[first if keyed[f"{first}_vs_{second}"] == 1 else second] += 1
    scores.update({f"weight_{dimension}": float(weight) for dimension, weight in weights.items()})
    scores["weighted_tlx"] = sum(scores[dimension] * weights[dimension] for dimension in TLX_DIMENSIONS) / TLX_PAIRS
    return scores


_TLX_CITATION = ("Hart, S. G., & Staveland, L. E. (1988). Development of NASA-TLX (Task Load Index): Results of "
                 "empirical and theoretical research. In P. A. Hancock & N. Meshkati (Eds.), Human Mental Workload "
                 "(Advances in Psychology, Vol. 52, pp. 139-183). North-Holland. "
                 "https://doi.org/10.1016/S0166-4115(08)62386-9 (sheet wording and pairs: NASA Task Load Index (TLX) "
                 "v1.0 Paper and Pencil Package, NASA Ames Research Center, 1986)")
_TLX_RATING_INSTRUCTIONS = ("Rate the task you just performed on each of the six scales: mark the point that matches "
                            "your experience (1 = the left end, 21 = the right end; each step is 5 points of 0-100). "
                            "Performance runs from perfect (left) to failure (right).")

NASA_TLX = Instrument(
    name="nasa_tlx", title="NASA Task Load Index, raw (RTLX)",
    citation=_TLX_CITATION + "; raw TLX: Hart, S. G. (2006). NASA-Task Load Index (NASA-TLX); 20 years later. "
                             "Proceedings of the HFES Annual Meeting, 50(9), 904-908.",
    items=_TLX_RATINGS,
    instructions=_TLX_RATING_INSTRUCTIONS,
    scores=(*TLX_DIMENSIONS, "raw_tlx"),
    rule=lambda items, keyed: _tlx_ratings(keyed),
)

NASA_TLX_WEIGHTED = Instrument(
    name="nasa_tlx_weighted", title="NASA Task Load Index, weighted (pairwise comparisons)",
    citation=_TLX_CITATION,
    items=_TLX_RATINGS + _TLX_PAIR_ITEMS,
    instructions=_TLX_RATING_INSTRUCTIONS + " Then, for each of the 15 pairs, choose the one that was the more "
                                            "important contributor to the workload of the task (1 = the first "
                                            "named, 2 = the second).",
    scores=(*TLX_DIMENSIONS, "raw_tlx", *(f"weight_{dimension}" for dimension in TLX_DIMENSIONS), "weighted_tlx"),
    rule=_score_weighted_tlx,
)

# --- SUS ------------------------------------------------------------------------------------

SUS_POINTS = 5
"""SUS answers are 1 (strongly disagree) .. 5 (strongly agree)."""

SUS_WEIGHT = 2.5
"""The sum of the ten contributions (0..40) times 2.5 is the SUS score (0..100)."""

_SUS_STATEMENTS = (
    "I think that I would like to use this system frequently.",
    "I found the system unnecessarily complex.",
    "I thought the system was easy to use.",
    "I think that I would need the support of a technical person to be able to use this system.",
    "I found the various functions in this system were well integrated.",
    "I thought there was too much inconsistency in this system.",
    "I would imagine that most people would learn to use this system very quickly.",
    "I found the system very cumbersome to use.",
    "I felt very confident using the system.",
    "I needed to learn a lot of things before I could get going with this system.",
)

SUS = Instrument(
    name="sus", title="System Usability Scale (SUS)",
    citation='Brooke, J. (1996). SUS: A "quick and dirty" usability scale. In P. W. Jordan, B. Thomas, '
             "B. A. Weerdmeester, & I. L. McClelland (Eds.), Usability Evaluation in Industry (pp. 189-194). "
             "Taylor & Francis.",
    # even items contribute 5 - answer = (6 - answer) - 1: reverse-keyed, then coded like the odd ones
    items=tuple(InstrumentItem(f"SUS{number}", statement, SUS_POINTS, ("strongly disagree", "strongly agree"),
                               reverse=number % 2 == 0)
                for number, statement in enumerate(_SUS_STATEMENTS, start=1)),
    instructions="Record your immediate response to each statement rather than thinking about it for a long time. "
                 "Respond to every statement; if you feel you cannot respond to one, mark the centre point (3).",
    scores=("sus",),
    rule=lambda items, keyed: {"sus": sum(keyed[item.id] - 1 for item in items) * SUS_WEIGHT},
)

# --- agency ---------------------------------------------------------------------------------

AGENCY_POINTS = 7
"""Agency answers are 1 (strongly disagree) .. 7 (strongly agree), scored as given."""

_DISAGREE_AGREE = ("strongly disagree", "strongly agree")

AGENCY = Instrument(
    name="agency", title="Sense of agency (VEQ Control/Agency factor) and perceived control",
    citation="Roth, D., & Latoschik, M. E. (2020). Construction of the Virtual Embodiment Questionnaire (VEQ). "
             "IEEE Transactions on Visualization and Computer Graphics, 26(12), 3546-3556. "
             "https://doi.org/10.1109/TVCG.2020.3023603; perceived control as rated in Xie, L., Sun, L. C., "
             "Neall, A., Wu, T., Cai, S., & Wetzstein, G. (2026). Generated Reality: Human-centric World Simulation "
             "using Interactive Video Generation with Hand and Camera Control. arXiv:2602.18422",
    items=(
        InstrumentItem("CO1", "The movements of the virtual body felt like they were my movements.", AGENCY_POINTS,
                       _DISAGREE_AGREE, subscale="agency"),
        InstrumentItem("CO2", "I felt like I was controlling the movements of the virtual body.", AGENCY_POINTS,
                       _DISAGREE_AGREE, subscale="agency"),
        InstrumentItem("CO3", "I felt like I was causing the movements of the virtual body.", AGENCY_POINTS,
                       _DISAGREE_AGREE, subscale="agency"),
        InstrumentItem("CO4", "The movements of the virtual body were in sync with my own movements.", AGENCY_POINTS,
                       _DISAGREE_AGREE, subscale="agency"),
        InstrumentItem("perceived_control", "I felt in control of the actions I performed in the generated scene.",
                       AGENCY_POINTS, _DISAGREE_AGREE, subscale="perceived_control"),
    ),
    instructions="Please read each statement and indicate how strongly you agree or disagree with it (1 through 7). "
                 "There are no right or wrong answers. Answer spontaneously and intuitively. The virtual body is "
                 "the body (the hands) you saw in the generated scene.",
    scores=("agency", "perceived_control"),
    rule=lambda items, keyed: _subscale_means(items, keyed, offset=0),
)

INSTRUMENTS: dict[str, Instrument] = {instrument.name: instrument
                                      for instrument in (IPQ, SSQ, NASA_TLX, NASA_TLX_WEIGHTED, SUS, AGENCY)}
"""The standard instruments by name."""


def get_instrument(name: str) -> Instrument:
    """The instrument called ``name``; :class:`InstrumentError` lists the known names otherwise."""
    if isinstance(name, str) and name in INSTRUMENTS:
        return INSTRUMENTS[name]
    raise InstrumentError(f"unknown instrument {name!r}; known: {', '.join(sorted(INSTRUMENTS))}")
