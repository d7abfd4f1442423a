"""The bus contract: the services a session calls, with their request and response types.

A tracking source and the frame loop call these by name on any :class:`~genxr.platform.bus.Bus`
(in-process or Ray Serve); the world model and the avatar answer them. The names are what
the Ray Serve backend routes on, so a headset client in another language calls the same names.
"""

from __future__ import annotations

from genxr.platform.bus import Service
from genxr.platform.messages import AvatarMotion, AvatarRequest, WorldFrame, WorldFrameRequest

WORLD_SERVICE = Service("world_model", WorldFrameRequest, WorldFrame)
"""The world model: a :class:`WorldFrameRequest` (tracking since the last one) -> the newest :class:`WorldFrame`."""
AVATAR_SERVICE = Service("avatar", AvatarRequest, AvatarMotion)
"""The avatar: an :class:`AvatarRequest` (user pose, audio since the last one) -> :class:`AvatarMotion`."""

SERVICES: tuple[Service, ...] = (WORLD_SERVICE, AVATAR_SERVICE)
"""Every service of the contract."""
