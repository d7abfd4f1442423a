"""The tracking table's layout: a recording's :class:`TrackingFrame` as one row of named columns.

``frame_id``, ``sample_time_ns``, ``predicted_display_time_ns``, ``head_tracked``, head
position ``head_x/y/z`` (m) and orientation ``head_qx/qy/qz/qw`` (a unit quaternion, x y z w),
then per hand (``left``, ``right``) ``<side>_active`` and for every joint (OpenXR's 26, in
order) its position ``<side>_<joint>_x/y/z`` (m), orientation ``<side>_<joint>_qx/qy/qz/qw``,
radius ``<side>_<joint>_radius`` (m) and location flags ``<side>_<joint>_flags`` (OpenXR's
``XrSpaceLocationFlags`` bits) - all empty when the hand is absent from the frame. Written by
``genxr study export`` (:mod:`genxr.evaluation.export`) and read back by ``genxr import
study-csv`` (:mod:`.importers.study_csv`): one layout for both directions.
"""

from __future__ import annotations

from typing import Any

from genxr.platform.messages import HAND_JOINT_NAMES, TrackingFrame

JOINT_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "radius", "flags")
"""Per joint, in this order: position (m), orientation (x, y, z, w), radius (m), location flags."""


def tracking_columns() -> list[str]:
    columns = ["frame_id", "sample_time_ns", "predicted_display_time_ns", "head_tracked",
               "head_x", "head_y", "head_z", "head_qx", "head_qy", "head_qz", "head_qw"]
    for side in ("left", "right"):
        columns.append(f"{side}_active")
        columns += [f"{side}_{joint}_{field}" for joint in HAND_JOINT_NAMES for field in JOINT_FIELDS]
    return columns


def tracking_row(frame: TrackingFrame) -> list[Any]:
    row: list[Any] = [frame.frame_id, frame.sample_time_ns, frame.predicted_display_time_ns, frame.head_tracked,
                      *frame.head.position, *frame.head.orientation]
    for hand in (frame.left_hand, frame.right_hand):
        if hand is None:
            row += [None] * (1 + len(JOINT_FIELDS) * len(HAND_JOINT_NAMES))
            continue
        row.append(hand.is_active)
        for index in range(len(HAND_JOINT_NAMES)):
            row += [float(v) for v in hand.positions[index]]
            row += [float(v) for v in hand.orientations[index]]
            row += [float(hand.radii[index]), int(hand.location_flags[index])]
    return row
