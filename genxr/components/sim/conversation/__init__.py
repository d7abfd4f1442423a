"""Dyadic conversation simulator: ground truth for the conversational avatar.

A user (head trajectory, speech) and an agent (speech, 22-joint body motion at 30 fps)
talk; everything is in the avatar frame of :mod:`genxr.components.avatar.skeleton` (metres,
+Y up, the agent stands at the origin and its rest pose faces +Z). Seeded: the same seed
and duration give identical arrays and identical data-set bytes.
"""
