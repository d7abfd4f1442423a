"""The name a session's default world model reports: the shipped student, folded at the
default ratio, its chunk step on ONNX Runtime on the CPU."""

from __future__ import annotations

from genxr.platform.config import DEFAULT_WORLD_FOLD

DEFAULT_STUDENT = f"worldmodel-student-fold{DEFAULT_WORLD_FOLD:g}@onnxruntime[CPUExecutionProvider]"
