"""The GPU compositor: the timewarp and the avatar's body drawn with OpenGL, straight into a texture.

The same frame as :class:`~genxr.xr_runtime.compositor.Compositor` (the reference it is tested
against, on Mesa's llvmpipe in CI), rendered in the current GL context into any 2D texture -
a headset's swapchain image, with no CPU round trip:

1. the world: one full-screen triangle whose vertex shader carries each corner's display ray
   rotated into the generation camera (``R = R_g^T R_v``, affine in screen position, so
   interpolated exactly with ``noperspective``); the fragment shader divides by depth, clamps
   like the CPU path (rays at or behind the generation camera reach the border) and samples
   the world frame bilinearly with clamped edges (``BORDER_REPLICATE``'s twin);
2. the avatar: :func:`~genxr.xr_runtime.avatar_body.body_mesh` (capsule limbs, head, eyes)
   projected with the view's asymmetric OpenXR frustum, depth-tested against itself (the world
   is drawn at infinity, so the body is always in front of it) and shaded by a light at the eye.

Colour: the world frame and the body's colours are sRGB bytes. For an sRGB target format
(``GL_SRGB8_ALPHA8``, the one genxr prefers) they are written as they are (GL_FRAMEBUFFER_SRGB
stays off, so the texture holds sRGB); for a linear format the world is sampled through an sRGB
texture (decoded by the sampler) and the body's colours are decoded in the shader, as the
upload path does with its table (:mod:`genxr.xr_runtime.openxr.sink`).

Rows: GL's origin is the bottom-left, as a swapchain image's; :meth:`GLCompositor.read` returns
top-down rows like every genxr image.

PyOpenGL is imported when the compositor is created (it fixes EGL or GLX at its first import;
the caller's context decides). Written on raw GL calls rather than a wrapper such as
moderngl: pyopenxr already brings PyOpenGL, and the swapchain textures are PyOpenGL names.
"""

from __future__ import annotations

import math

import numpy as np

from genxr.platform.messages import AvatarMotion, Pose, WorldFrame
from genxr.xr_runtime.avatar_body import body_mesh, body_pose
from genxr.xr_runtime.avatar_overlay import NEAR_PLANE_M
from genxr.xr_runtime.compositor import GRID_LIMIT_NDC, MIN_RAY_DEPTH, CompositorConfig, rotation_angle_deg
from genxr.xr_runtime.openxr.sink import GL_SRGB8_ALPHA8, SRGB_FORMATS
from genxr.xr_runtime.views import DisplayView, ViewFov

FAR_PLANE_M = 100.0
"""Far clipping plane of the avatar's projection, metres (the near one is the overlay's NEAR_PLANE_M)."""
AMBIENT = 0.35
"""Share of a body colour lit without the eye's light (0..1); the rest follows the cosine to the eye."""
GL_FRAMEBUFFER_COMPLETE = 0x8CD5

WORLD_VERTEX = """#version 330 core
uniform mat3 rotation;       // display view -> generation camera (R_g^T R_v)
uniform vec4 view_tangents;  // tan left, tan right, tan down, tan up of the display view
noperspective out vec3 ray;  // the pixel's ray in the generation camera's frame
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    vec2 ndc = corner * 2.0 - 1.0;                                             // covers [-1, 1]^2
    ray = rotation * vec3(mix(view_tangents.xz, view_tangents.yw, ndc * 0.5 + 0.5), -1.0);
    gl_Position = vec4(ndc, 0.0, 1.0);
}
"""
WORLD_FRAGMENT = f"""#version 330 core
uniform sampler2D world;       // top image row at t = 0
uniform vec2 source_tangents;  // tan of half the generation camera's horizontal, vertical FOV
noperspective in vec3 ray;
out vec4 colour;
void main() {{
    float depth = max(-ray.z, {MIN_RAY_DEPTH:.1e});
    vec2 s = clamp(ray.xy / (depth * source_tangents), -{GRID_LIMIT_NDC:.1f}, {GRID_LIMIT_NDC:.1f});
    colour = vec4(texture(world, vec2(0.5 + 0.5 * s.x, 0.5 - 0.5 * s.y)).rgb, 1.0);
}}
"""
BODY_VERTEX = """#version 330 core
layout(location = 0) in vec3 position;  // metres, reference space
layout(location = 1) in vec3 normal;
layout(location = 2) in vec3 base_colour;
uniform mat4 view;                      // reference space -> eye
uniform mat4 projection;                // eye -> clip (the view's OpenXR frustum)
out vec3 eye_normal;
out vec3 surface;
void main() {
    vec4 eye = view * vec4(position, 1.0);
    eye_normal = mat3(view) * normal;
    surface = base_colour;
    gl_Position = projection * eye;
}
"""
BODY_FRAGMENT = f"""#version 330 core
uniform bool linear_output;
in vec3 eye_normal;
in vec3 surface;
out vec4 colour;
void main() {{
    vec3 lit = surface * ({AMBIENT} + {1 - AMBIENT} * max(normalize(eye_normal).z, 0.0));  // light at the eye
    if (linear_output)
        lit = mix(lit / 12.92, pow((lit + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), lit));
    colour = vec4(lit, 1.0);
}}
"""


def projection_matrix(fov: ViewFov, near_m: float = NEAR_PLANE_M, far_m: float = FAR_PLANE_M) -> np.ndarray:
    """(4, 4) OpenGL projection of an OpenXR view frustum (row-major; OpenXR's xr_linear.h)."""
    tan_l, tan_r, tan_u, tan_d = fov.tangents()
    width, height = tan_r - tan_l, tan_u - tan_d
    return np.array([[2 / width, 0, (tan_r + tan_l) / width, 0],
                     [0, 2 / height, (tan_u + tan_d) / height, 0],
                     [0, 0, -(far_m + near_m) / (far_m - near_m), -2 * far_m * near_m / (far_m - near_m)],
                     [0, 0, -1, 0]], np.float32)


class GLCompositor:
    """Renders display views into GL textures of ``config.width`` x ``config.height`` in the GL
    context current when it is created and used (see module docstring). ``target_format``: the
    internal format of the textures it renders into (a swapchain's)."""

    def __init__(self, config: CompositorConfig = CompositorConfig(), target_format: int = GL_SRGB8_ALPHA8) -> None:
        from OpenGL import GL
        from OpenGL.GL import shaders

        self._gl = GL
        self.config = config
        self.target_format = target_format
        self.linear_output = target_format not in SRGB_FORMATS
        self._world_program = shaders.compileProgram(shaders.compileShader(WORLD_VERTEX, GL.GL_VERTEX_SHADER),
                                                     shaders.compileShader(WORLD_FRAGMENT, GL.GL_FRAGMENT_SHADER))
        self._body_program = shaders.compileProgram(shaders.compileShader(BODY_VERTEX, GL.GL_VERTEX_SHADER),
                                                    shaders.compileShader(BODY_FRAGMENT, GL.GL_FRAGMENT_SHADER))
        self._uniforms = {name: GL.glGetUniformLocation(program, name) for program, names in (
            (self._world_program, ("rotation", "view_tangents", "source_tangents", "world")),
            (self._body_program, ("view", "projection", "linear_output"))) for name in names}
        self._world_vao = GL.glGenVertexArrays(1)
        self._body_vao = GL.glGenVertexArrays(1)
        self._body_buffers = GL.glGenBuffers(3)
        GL.glBindVertexArray(self._body_vao)
        for location, (buffer, (size, kind, normalised)) in enumerate(zip(self._body_buffers, (
                (3, GL.GL_FLOAT, GL.GL_FALSE), (3, GL.GL_FLOAT, GL.GL_FALSE), (3, GL.GL_UNSIGNED_BYTE, GL.GL_TRUE)))):
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buffer)
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(location, size, kind, normalised, 0, None)
        GL.glBindVertexArray(0)
        self._world_texture = GL.glGenTextures(1)
        self._world_shown: tuple[str, int, int] | None = None
        """(session, request, frame) of the world frame in the texture: uploaded again only when it changes."""
        self._depth = GL.glGenRenderbuffers(1)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self._depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, config.width, config.height)
        self._body_key: tuple | None = None
        self._body: tuple[np.ndarray, np.ndarray, np.ndarray] = ()
        self._framebuffers: dict[int, int] = {}
        """Target texture -> its framebuffer (a swapchain has a few images; each keeps its own)."""

    def render(self, target: int, world: WorldFrame | None, view: DisplayView, avatar: AvatarMotion | None = None,
               display_time_ns: int = 0) -> float | None:
        """Draws ``world`` re-projected to ``view`` (its pose, reference space, and frustum) and the
        avatar at ``display_time_ns`` into level 0 of the texture ``target``; black without a
        world. Returns the re-projection angle (degrees), None without a world. Not finished
        when it returns (the GL queue is): a swapchain release or :meth:`read` waits for it."""
        GL = self._gl
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._framebuffer(target))
        GL.glViewport(0, 0, self.config.width, self.config.height)
        GL.glDisable(GL.GL_FRAMEBUFFER_SRGB)  # sRGB targets store the sRGB bytes as they are
        if world is None:  # the world covers every pixel: clearing first would cost a full-screen pass
            GL.glClearColor(0.0, 0.0, 0.0, 1.0)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        angle = None
        if world is not None:
            relative = world.head.rotation_matrix().T @ view.pose.rotation_matrix()
            self._draw_world(world, relative, view.fov)
            angle = rotation_angle_deg(relative)
        if avatar is not None:
            self._draw_body(avatar, display_time_ns, view)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return angle

    def _framebuffer(self, target: int) -> int:
        GL = self._gl
        framebuffer = self._framebuffers.get(target)
        if framebuffer is None:
            framebuffer = self._framebuffers[target] = GL.glGenFramebuffers(1)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, framebuffer)
            GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, target, 0)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self._depth)
            status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
            if status != GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"texture {target} cannot be rendered into (framebuffer status {hex(status)}); "
                                   f"it must be a 2D texture of at least {self.config.width}x{self.config.height}")
        return framebuffer

    def _draw_world(self, world: WorldFrame, relative: np.ndarray, fov: ViewFov) -> None:
        GL = self._gl
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._world_texture)
        shown = (world.session_id, world.request_id, world.frame_id)
        if shown != self._world_shown:
            image = np.ascontiguousarray(world.image)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_SRGB8 if self.linear_output else GL.GL_RGB8, image.shape[1],
                            image.shape[0], 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, image)
            for name, value in ((GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR), (GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR),
                                (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE), (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, name, value)
            self._world_shown = shown
        height, width = world.image.shape[:2]
        tan_y = math.tan(math.radians(world.vertical_fov_deg) / 2)
        tan_l, tan_r, tan_u, tan_d = fov.tangents()
        GL.glUseProgram(self._world_program)
        GL.glUniformMatrix3fv(self._uniforms["rotation"], 1, GL.GL_TRUE, relative.astype(np.float32))
        GL.glUniform4f(self._uniforms["view_tangents"], tan_l, tan_r, tan_d, tan_u)
        GL.glUniform2f(self._uniforms["source_tangents"], tan_y * width / height, tan_y)
        GL.glUniform1i(self._uniforms["world"], 0)
        GL.glDisable(GL.GL_DEPTH_TEST)  # at infinity: behind everything
        GL.glBindVertexArray(self._world_vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)

    def _mesh(self, avatar: AvatarMotion, display_time_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`body_mesh` at ``display_time_ns``, built once for all the views of a frame."""
        key = (avatar, display_time_ns)  # the motion itself (held, so its id cannot be reused): messages are immutable
        if self._body_key is None or self._body_key[0] is not avatar or self._body_key[1] != display_time_ns:
            self._body_key, self._body = key, body_mesh(body_pose(avatar, display_time_ns))
        return self._body

    def _draw_body(self, avatar: AvatarMotion, display_time_ns: int, view: DisplayView) -> None:
        GL = self._gl
        positions, normals, colours = self._mesh(avatar, display_time_ns)
        for buffer, data in zip(self._body_buffers, (positions, normals, colours)):
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buffer)
            GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, np.ascontiguousarray(data), GL.GL_STREAM_DRAW)
        eye_from_reference = np.linalg.inv(view.pose.matrix()).astype(np.float32)
        projection = projection_matrix(view.fov)
        box = self._screen_box(positions, projection @ eye_from_reference)
        if box is None:
            return
        GL.glEnable(GL.GL_SCISSOR_TEST)  # the depth buffer is cleared (and the body drawn) only where it can be
        GL.glScissor(*box)
        GL.glClear(GL.GL_DEPTH_BUFFER_BIT)
        GL.glUseProgram(self._body_program)
        GL.glUniformMatrix4fv(self._uniforms["view"], 1, GL.GL_TRUE, eye_from_reference)
        GL.glUniformMatrix4fv(self._uniforms["projection"], 1, GL.GL_TRUE, projection)
        GL.glUniform1i(self._uniforms["linear_output"], int(self.linear_output))
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LESS)
        GL.glBindVertexArray(self._body_vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, len(positions))
        GL.glBindVertexArray(0)
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_SCISSOR_TEST)

    def _screen_box(self, positions: np.ndarray, clip_from_reference: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) pixels, GL's bottom-left origin, around the body's vertices
        (N, 3); the whole view when one is at or behind the eye; None when none can show."""
        clip = positions @ clip_from_reference[:3, :3].T + clip_from_reference[:3, 3]
        w = positions @ clip_from_reference[3, :3] + clip_from_reference[3, 3]
        width, height = self.config.width, self.config.height
        if np.any(w <= NEAR_PLANE_M):
            return 0, 0, width, height
        ndc = clip[:, :2] / w[:, None]
        low, high = ndc.min(axis=0), ndc.max(axis=0)
        x0 = max(0, math.floor((low[0] + 1) / 2 * width) - 1)
        y0 = max(0, math.floor((low[1] + 1) / 2 * height) - 1)
        x1 = min(width, math.ceil((high[0] + 1) / 2 * width) + 1)
        y1 = min(height, math.ceil((high[1] + 1) / 2 * height) + 1)
        return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1 - x0, y1 - y0)

    def read(self, target: int) -> np.ndarray:
        """(H, W, 3) uint8 of texture ``target`` as rendered, top row first (waits for the GL queue).
        For tests, benchmarks and recording, never the headset path."""
        GL = self._gl
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._framebuffer(target))
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, self.config.width, self.config.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return np.frombuffer(data, np.uint8).reshape(self.config.height, self.config.width, 3)[::-1].copy()

    def texture(self) -> int:
        """A new ``config.width`` x ``config.height`` 2D texture of ``target_format`` to render into
        (a swapchain brings its own)."""
        GL = self._gl
        name = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, self.target_format, self.config.width, self.config.height, 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, None)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        return name

    def close(self) -> None:
        """Frees the compositor's GL objects (not the target textures)."""
        GL = self._gl
        if self._framebuffers:
            GL.glDeleteFramebuffers(len(self._framebuffers), list(self._framebuffers.values()))
            self._framebuffers.clear()
        GL.glDeleteRenderbuffers(1, [self._depth])
        GL.glDeleteTextures(1, [self._world_texture])
        GL.glDeleteBuffers(3, self._body_buffers)
        GL.glDeleteVertexArrays(2, [self._world_vao, self._body_vao])
        GL.glDeleteProgram(self._world_program)
        GL.glDeleteProgram(self._body_program)


def mono_view(head: Pose, config: CompositorConfig) -> DisplayView:
    """The mono display's one view: ``head`` through the config's symmetric frustum."""
    return DisplayView(pose=head, fov=ViewFov.symmetric(config.vertical_fov_deg, config.width, config.height))
