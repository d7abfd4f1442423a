"""Batched ray caster in torch (CPU): the room, boxes, spheres and capsule hands.

One primary ray per pixel from the head pose (see :mod:`genxr.components.sim.camera` for
the projection conventions), analytic intersections with

* the room: the inside of an axis-aligned box (checkered floor, walls with a wainscot
  band and a vertical texture, ceiling), tested by every ray,
* axis-aligned boxes (table, button, pushable box), spheres (ball) and capsules (each
  hand: one per bone of :data:`~genxr.components.sim.hand.BONES` plus a forearm), tested
  only by the rays of the screen tiles their bounding sphere can cover (``tile_px``
  square tiles; the bound is conservative, so binning never loses a hit),

and Lambertian shading under one directional light plus ambient. The nearest hit per
pixel is found with a scatter-min; ties go to the primitive listed first. Everything is
float32 and batched over frames, and deterministic for a given batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genxr.components.sim.camera import PinholeCamera
from genxr.components.sim.hand import BONES


@dataclass(frozen=True)
class RendererConfig:
    """Camera, light (direction toward the light, world frame) and the drawn forearm (metres)."""

    width: int = 64
    height: int = 64
    vertical_fov_deg: float = 80.0
    light_direction: tuple[float, float, float] = (0.35, 1.0, 0.45)
    ambient: float = 0.4
    forearm_length_m: float = 0.22
    forearm_radius_m: float = 0.026
    tile_px: int = 4

    def __post_init__(self) -> None:
        if not (isinstance(self.tile_px, int) and self.tile_px >= 1):
            raise ValueError(f"tile_px {self.tile_px!r} must be an integer >= 1")
        if not 0.0 <= self.ambient <= 1.0:
            raise ValueError(f"ambient {self.ambient} must be in [0, 1]")


@dataclass(frozen=True)
class RenderBatch:
    """What to draw for B frames; world frame (STAGE), metres, colours RGB in [0, 1], float32 tensors.

    ``view`` (B, 4, 4) camera-to-world (head pose). Room: ``room_min``/``room_max`` (B, 3),
    ``floor_colours`` (B, 2, 3) checker colours with square size ``checker_m`` (B,),
    ``wall_colour``/``stripe_colour`` (B, 3) with the wainscot band below ``stripe_height_m``
    (B,), ``ceiling_colour`` (B, 3). Objects: ``boxes`` (B, NB, 2, 3) min/max corners with
    ``box_colours`` (B, NB, 3) and int64 ``box_ids`` (NB,); ``spheres`` (B, NS, 4) centre and
    radius with ``sphere_colours`` (B, NS, 3) and ``sphere_ids`` (NS,). Hands: ``hand_joints``
    (B, 2, 26, 3) [left, right] in OpenXR order, ``hand_radii`` (B, 2, 26), ``hand_visible``
    (B, 2) bool (False: not drawn), ``skin_colour`` (B, 3).
    """

    view: torch.Tensor
    room_min: torch.Tensor
    room_max: torch.Tensor
    floor_colours: torch.Tensor
    checker_m: torch.Tensor
    wall_colour: torch.Tensor
    stripe_colour: torch.Tensor
    stripe_height_m: torch.Tensor
    ceiling_colour: torch.Tensor
    boxes: torch.Tensor
    box_colours: torch.Tensor
    box_ids: torch.Tensor
    spheres: torch.Tensor
    sphere_colours: torch.Tensor
    sphere_ids: torch.Tensor
    hand_joints: torch.Tensor
    hand_radii: torch.Tensor
    hand_visible: torch.Tensor
    skin_colour: torch.Tensor

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                index = tuple(int(i) for i in torch.nonzero(~torch.isfinite(value))[0])
                raise ValueError(f"render batch field {name} holds {value[index].item()} at index {index}")


@dataclass(frozen=True)
class RenderOutput:
    """Per frame: ``rgb`` (B, H, W, 3) uint8; ``depth`` (B, H, W) float32 metres (z-buffer depth);
    ``hand_mask`` (B, H, W) uint8 (0 none, 1 left, 2 right); ``object_mask`` (B, H, W) uint8
    object id (0 room; hands cover objects); ``joints_2d`` (B, 2, 26, 2) float32 pixel (u, v)
    of both hands' joints; ``joints_depth`` (B, 2, 26) float32 metres (<= 0: behind the camera)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    hand_mask: torch.Tensor
    object_mask: torch.Tensor
    joints_2d: torch.Tensor
    joints_depth: torch.Tensor


_BONE_A, _BONE_B = (torch.tensor(index) for index in np.array(BONES).T)
_INF = float("inf")
_NEAR_M = 0.02
_CORNERS = torch.stack(torch.meshgrid(*[torch.tensor([False, True])] * 3, indexing="ij"), -1).reshape(8, 3)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _axis_normal(axis: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Unit normal along ``axis`` (...,) facing against the ray direction ``d`` (..., 3)."""
    return -torch.nn.functional.one_hot(axis, 3).to(d.dtype) * torch.sign(d)


class Renderer:
    """Renders :class:`RenderBatch` es at the configured resolution."""

    def __init__(self, config: RendererConfig | None = None) -> None:
        self.config = config or RendererConfig()
        c = self.config
        self.camera = PinholeCamera(c.width, c.height, c.vertical_fov_deg)
        self._rays = self.camera.ray_directions()  # (P, 3) camera frame
        self._depth_scale = -self._rays[:, 2]  # ray distance -> z-buffer depth
        light = torch.tensor(c.light_direction, dtype=torch.float32)
        self._light = light / light.norm()
        tile = c.tile_px
        self._tiles = (-(-c.height // tile), -(-c.width // tile))
        dy, dx = torch.meshgrid(torch.arange(tile), torch.arange(tile), indexing="ij")
        self._tile_dy, self._tile_dx = dy.reshape(-1), dx.reshape(-1)

    @torch.inference_mode()
    def render(self, batch: RenderBatch) -> RenderOutput:
        """Draws every frame of ``batch``."""
        b, h, w = batch.view.shape[0], self.camera.height, self.camera.width
        p = h * w
        rotation, origin = batch.view[:, :3, :3], batch.view[:, :3, 3]
        directions = self._rays @ rotation.transpose(1, 2)  # (B, P, 3) world
        t_room, lambert, colour = self._room(batch, origin, directions)

        a, bb, radius, capsule_colour, capsule_object, capsule_hand = self._capsules(batch)
        boxes = batch.boxes
        # a capsule lies in the hull of its end spheres, a box in the hull of its corners
        ends = self._rect(torch.cat([a, bb], 1), torch.cat([radius, radius], 1), rotation, origin)
        frame_c, prim_c, pixel_c = self._bin(_union(ends.reshape(b, 2, -1, 4), 1), radius > 0)
        corner_points = torch.where(_CORNERS, boxes[:, :, None, 1], boxes[:, :, None, 0])  # (B, NB, 8, 3)
        corners = self._rect(corner_points.reshape(b, -1, 3), torch.zeros(b, corner_points.shape[1] * 8),
                             rotation, origin)
        frame_b, prim_b, pixel_b = self._bin(_union(corners.reshape(b, -1, 8, 4), 2),
                                             torch.ones(boxes.shape[:2], dtype=torch.bool))
        # per-primitive tables relative to the eye, flattened over (frame, primitive)
        capsule_start = (a - origin[:, None, :]).reshape(-1, 3)
        capsule_axis = (bb - a).reshape(-1, 3)
        box_low = (boxes[:, :, 0] - origin[:, None, :]).reshape(-1, 3)
        box_high = (boxes[:, :, 1] - origin[:, None, :]).reshape(-1, 3)
        capsule_key = frame_c * a.shape[1] + prim_c
        box_key = frame_b * boxes.shape[1] + prim_b
        rays = directions.reshape(-1, 3)
        ray_b, ray_c = frame_b * p + pixel_b, frame_c * p + pixel_c
        t_b = _box_hits(rays.index_select(0, ray_b), box_low.index_select(0, box_key),
                        box_high.index_select(0, box_key))
        t_c = _capsule_hits(rays.index_select(0, ray_c), capsule_start, capsule_axis, radius.reshape(-1), capsule_key)
        nearest, pixels, chosen = _nearest(t_room.reshape(-1), torch.cat([ray_b, ray_c]), torch.cat([t_b, t_c]))
        is_box = chosen < t_b.numel()
        box_pixels, box_pair = pixels[is_box], chosen[is_box]
        capsule_pixels, capsule_pair = pixels[~is_box], chosen[~is_box] - t_b.numel()
        box_win, capsule_win = box_key.index_select(0, box_pair), capsule_key.index_select(0, capsule_pair)

        lambert = lambert.reshape(-1)
        colour = colour.reshape(-1, 3)
        lambert[box_pixels] = (_box_normals(rays.index_select(0, box_pixels), box_low.index_select(0, box_win),
                                            box_high.index_select(0, box_win)) @ self._light).clamp(min=0.0)
        lambert[capsule_pixels] = (_capsule_normals(
            rays.index_select(0, capsule_pixels) * nearest.index_select(0, capsule_pixels)[:, None],
            capsule_start.index_select(0, capsule_win), capsule_axis.index_select(0, capsule_win),
            radius.reshape(-1).index_select(0, capsule_win)) @ self._light).clamp(min=0.0)
        colour[box_pixels] = batch.box_colours.reshape(-1, 3).index_select(0, box_win)
        colour[capsule_pixels] = capsule_colour.reshape(-1, 3).index_select(0, capsule_win)
        object_id = torch.zeros(b * p, dtype=torch.uint8)
        object_id[box_pixels] = batch.box_ids.to(torch.uint8)[prim_b.index_select(0, box_pair)]
        object_id[capsule_pixels] = capsule_object.to(torch.uint8)[prim_c.index_select(0, capsule_pair)]
        hand_mask = torch.zeros(b * p, dtype=torch.uint8)
        hand_mask[capsule_pixels] = capsule_hand.to(torch.uint8)[prim_c.index_select(0, capsule_pair)]

        ambient = self.config.ambient
        shade = ambient + (1 - ambient) * lambert
        rgb = (colour * shade[:, None]).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        joints_2d, joints_depth = self.camera.project(batch.hand_joints, batch.view)
        return RenderOutput(
            rgb=rgb.reshape(b, h, w, 3),
            depth=(nearest.reshape(b, p) * self._depth_scale).reshape(b, h, w),
            hand_mask=hand_mask.reshape(b, h, w), object_mask=object_id.reshape(b, h, w),
            joints_2d=joints_2d.float(), joints_depth=joints_depth.float(),
        )

    def _capsules(self, batch: RenderBatch):
        """Hand bones, forearms and the spheres as capsules: ends (B, K, 3) x 2, radii (B, K), colours
        (B, K, 3), object ids (K,) and hand labels (K,) (0 none, 1 left, 2 right)."""
        joints = batch.hand_joints  # (B, 2, 26, 3)
        wrist, knuckle = joints[:, :, 1], joints[:, :, 12]
        back = wrist - knuckle
        forearm = wrist + self.config.forearm_length_m * back / back.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        start = torch.cat([joints[:, :, _BONE_A], wrist[:, :, None]], 2)  # (B, 2, C, 3)
        end = torch.cat([joints[:, :, _BONE_B], forearm[:, :, None]], 2)
        radii = torch.minimum(batch.hand_radii[:, :, _BONE_A], batch.hand_radii[:, :, _BONE_B])
        radii = torch.cat([radii, torch.full_like(radii[..., :1], self.config.forearm_radius_m)], 2)
        radii = radii * batch.hand_visible[..., None]
        b, sides, c = radii.shape
        spheres = batch.spheres
        centres = spheres[..., :3]
        return (
            torch.cat([centres, start.reshape(b, -1, 3)], 1), torch.cat([centres, end.reshape(b, -1, 3)], 1),
            torch.cat([spheres[..., 3], radii.reshape(b, -1)], 1),
            torch.cat([batch.sphere_colours, batch.skin_colour[:, None, :].expand(-1, sides * c, -1)], 1),
            torch.cat([batch.sphere_ids, torch.zeros(sides * c, dtype=torch.long)]),
            torch.cat([torch.zeros_like(batch.sphere_ids), torch.arange(1, sides + 1).repeat_interleave(c)]),
        )

    def _rect(self, centre: torch.Tensor, radius: torch.Tensor, rotation: torch.Tensor, origin: torch.Tensor):
        """Conservative screen rectangle (u_low, u_high, v_low, v_high), pixels, of spheres ``centre``
        (B, K, 3), ``radius`` (B, K) (world, m): the projection of their camera-space bounding boxes.
        A sphere reaching the near plane covers the whole screen; one behind it, nothing."""
        h, w, f = self.camera.height, self.camera.width, self.camera.focal_px
        camera = torch.einsum("bji,bkj->bki", rotation, centre - origin[:, None, :])
        x, y, z = camera[..., 0], camera[..., 1], -camera[..., 2]
        near, far = (z - radius).clamp(min=_NEAR_M), (z + radius).clamp(min=_NEAR_M)
        u_low = w / 2 + f * torch.minimum((x - radius) / near, (x - radius) / far)
        u_high = w / 2 + f * torch.maximum((x + radius) / near, (x + radius) / far)
        v_low = h / 2 - f * torch.maximum((y + radius) / near, (y + radius) / far)
        v_high = h / 2 - f * torch.minimum((y - radius) / near, (y - radius) / far)
        close = z - radius <= _NEAR_M
        behind = z + radius <= _NEAR_M
        full = torch.tensor([0.0, float(w), 0.0, float(h)])
        empty = torch.tensor([1.0, -1.0, 1.0, -1.0])
        rect = torch.stack([u_low, u_high, v_low, v_high], -1)
        rect = torch.where(close[..., None], full, rect)
        return torch.where(behind[..., None], empty, rect)

    def _bin(self, rect: torch.Tensor, live: torch.Tensor):
        """(frame, primitive, pixel) index triples of the pixels in the screen tiles that rectangles
        ``rect`` (B, K, 4) (u_low, u_high, v_low, v_high) of ``live`` (B, K) primitives overlap."""
        h, w, tile = self.camera.height, self.camera.width, self.config.tile_px
        u_low, u_high, v_low, v_high = rect.unbind(-1)
        tiles_y, tiles_x = self._tiles
        ty0 = torch.floor(v_low / tile).clamp(0, tiles_y - 1)
        ty1 = torch.floor(v_high / tile).clamp(-1, tiles_y - 1)
        tx0 = torch.floor(u_low / tile).clamp(0, tiles_x - 1)
        tx1 = torch.floor(u_high / tile).clamp(-1, tiles_x - 1)
        live = live & (u_high >= 0) & (v_high >= 0) & (u_low < w) & (v_low < h) & (u_low <= u_high)
        ty = torch.arange(tiles_y, dtype=rect.dtype)[:, None]
        tx = torch.arange(tiles_x, dtype=rect.dtype)[None, :]
        covered = (live[..., None, None] & (ty >= ty0[..., None, None]) & (ty <= ty1[..., None, None])
                   & (tx >= tx0[..., None, None]) & (tx <= tx1[..., None, None]))
        frame, prim, tile_y, tile_x = torch.nonzero(covered, as_tuple=True)
        n = self._tile_dy.numel()
        row = (tile_y * tile)[:, None] + self._tile_dy[None, :]
        column = (tile_x * tile)[:, None] + self._tile_dx[None, :]
        inside = ((row < h) & (column < w)).reshape(-1)
        pixel = (row * w + column).reshape(-1)[inside]
        return frame.repeat_interleave(n)[inside], prim.repeat_interleave(n)[inside], pixel

    def _room(self, batch: RenderBatch, origin: torch.Tensor, d: torch.Tensor):
        """Exit of each ray from the room box: distance (B, P), Lambert term max(0, n.l) (B, P) of the
        inward face normal, and texture colour (B, P, 3).

        Each pixel picks one of five surface colours per frame (floor checker a/b, ceiling,
        wainscot, wall), times a wood-grain brightness on the walls.
        """
        b, p = d.shape[:2]
        wall = torch.where(torch.signbit(d), batch.room_min[:, None, :], batch.room_max[:, None, :])
        t, axis = ((wall - origin[:, None, :]) / d).min(-1)  # d = +-0 gives +inf: never the exit
        x, y, z = (origin[:, None, :] + t[..., None] * d).unbind(-1)
        checker = batch.checker_m[:, None]
        parity = (torch.floor(x / checker) + torch.floor(z / checker)).remainder(2).long()
        upward = d[..., 1] > 0
        on_wall = axis != 1
        surface = torch.where(on_wall, 3 + (y >= batch.stripe_height_m[:, None]).long(),
                              torch.where(upward, 2, parity))  # 0/1 floor, 2 ceiling, 3 wainscot, 4 wall
        palette = torch.cat([batch.floor_colours, batch.ceiling_colour[:, None], batch.stripe_colour[:, None],
                             batch.wall_colour[:, None]], 1)  # (B, 5, 3)
        colour = palette.reshape(-1, 3).index_select(0, (surface + 5 * torch.arange(b)[:, None]).reshape(-1))
        grain = torch.where(on_wall, 0.92 + 0.08 * torch.cos(torch.where(axis == 0, z, x) * 12.0), 1.0)
        colour = colour.reshape(b, p, 3) * grain[..., None]
        face = 2 * axis + torch.gather(d, 2, axis[..., None])[..., 0].signbit().long()  # +X, -X, +Y, ... travel
        facing = torch.stack([-self._light, self._light], 1).reshape(-1).clamp(min=0.0)  # inward normal . light
        return t, facing[face], colour


def _union(rects: torch.Tensor, dim: int) -> torch.Tensor:
    """Bounding rectangle (u_low, u_high, v_low, v_high) of the rectangles ``rects`` along ``dim``."""
    low, high = rects[..., 0::2].amin(dim), rects[..., 1::2].amax(dim)
    return torch.stack([low[..., 0], high[..., 0], low[..., 1], high[..., 1]], -1)


def _nearest(t_room: torch.Tensor, ray: torch.Tensor, t_hit: torch.Tensor):
    """Per ray (R,) the nearest of the room distance ``t_room`` (R,) and the primitive hits ``t_hit`` (M,)
    on rays ``ray`` (M,): distances (R,), the rays a primitive wins (W,) and the index of the winning
    hit (W,) - on a tie, the hit listed first."""
    nearest = t_room.clone()
    nearest.scatter_reduce_(0, ray, t_hit, reduce="amin")
    wins = (t_hit == nearest.index_select(0, ray)) & (t_hit < t_room.index_select(0, ray))
    winner = torch.full_like(t_room, t_hit.numel(), dtype=torch.long)
    winner.scatter_reduce_(0, ray[wins], torch.arange(t_hit.numel())[wins], reduce="amin")
    pixels = torch.nonzero(winner < t_hit.numel())[:, 0]
    return nearest, pixels, winner.index_select(0, pixels)


def _box_hits(d: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Entry distance (M,) (inf: miss) of rays from the origin along ``d`` (M, 3) into axis-aligned
    boxes ``low``..``high`` (M, 3) (slab method)."""
    inverse = 1.0 / torch.where(d.abs() > 1e-9, d, torch.full_like(d, 1e-9))
    t_low, t_high = low * inverse, high * inverse
    near = torch.minimum(t_low, t_high).amax(-1)
    far = torch.maximum(t_low, t_high).amin(-1)
    return near.masked_fill((near > far) | (near <= 0), _INF)


def _box_normals(d: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Outward unit normal (M, 3) of the face through which rays ``d`` (M, 3) enter boxes ``low``..``high``."""
    inverse = 1.0 / torch.where(d.abs() > 1e-9, d, torch.full_like(d, 1e-9))
    axis = torch.minimum(low * inverse, high * inverse).argmax(-1)
    return _axis_normal(axis, d)


def _capsule_hits(d: torch.Tensor, start: torch.Tensor, axis: torch.Tensor, radius: torch.Tensor,
                  key: torch.Tensor) -> torch.Tensor:
    """Entry distance (M,) (inf: miss) of rays from the origin along ``d`` (M, 3) into capsules
    ``key`` (M,) of the tables ``start`` (K, 3), ``axis`` (K, 3) (end - start) and ``radius`` (K,)
    (a sphere when the axis is zero).

    Closed form of I. Quilez's ray-capsule intersection with the ray origin at 0; the
    per-capsule terms are computed once on the tables, the end-cap spheres from scalars.
    """
    baba, baoa, oaoa = _dot(axis, axis), -_dot(axis, start), _dot(start, start)
    rr = radius * radius
    pa, ba = start.index_select(0, key), axis.index_select(0, key)
    baba, baoa, oaoa, rr = (x.index_select(0, key) for x in (baba, baoa, oaoa, rr))
    bard, rdoa = _dot(ba, d), -_dot(d, pa)
    a = baba - bard * bard
    b = baba * rdoa - baoa * bard
    c = baba * oaoa - baoa * baoa - rr * baba
    h = b * b - a * c
    root = torch.sqrt(h.clamp(min=0.0))
    body = (-b - root) / torch.where(a.abs() > 1e-12, a, torch.full_like(a, 1e-12))
    y = baoa + body * bard
    body_hit = (h >= 0) & (y > 0) & (y < baba) & (body > 0)
    start_cap = y <= 0  # which end-cap sphere: at start (along = d.pa) or at end (d.pb)
    along = torch.where(start_cap, -rdoa, bard - rdoa)
    centre_sq = torch.where(start_cap, oaoa, oaoa - 2 * baoa + baba)
    disc = along * along - (centre_sq - rr)
    cap = along - torch.sqrt(disc.clamp(min=0.0))
    cap_hit = (h >= 0) & (disc >= 0) & (cap > 0) & (rr > 0)
    return torch.where(body_hit & (rr > 0), body, cap.masked_fill(~cap_hit, _INF))


def _capsule_normals(point: torch.Tensor, start: torch.Tensor, axis: torch.Tensor, radius: torch.Tensor):
    """Outward unit normal (M, 3) at surface points ``point`` (M, 3) of capsules ``start`` + [0, 1] ``axis``."""
    s = (_dot(point - start, axis) / _dot(axis, axis).clamp(min=1e-12)).clamp(0.0, 1.0)
    return (point - start - s[:, None] * axis) / radius.clamp(min=1e-6)[:, None]
