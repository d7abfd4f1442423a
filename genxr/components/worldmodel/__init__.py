"""Head- and hand-conditioned video world model (a small "Generated Reality").

A frame codec (:mod:`.codec`) maps 64x64 RGB frames to an 8x8 latent grid; a video
diffusion transformer (:mod:`.dit`) denoises latent clips with flow matching
(:mod:`genxr.components.flow_matching`) under head and hand conditioning
(:mod:`.conditioning`: Plucker ray maps, a 2D hand-skeleton image, 3D camera-frame
joints). The bidirectional many-step teacher (:mod:`.teacher`) is distilled into a
chunk-causal few-step student (:mod:`.distill`) that streams with a rolling KV cache
(:mod:`.stream`); :mod:`.service` answers the session's ``WorldFrameRequest`` with it.
Frames: poses in STAGE space, cameras in OpenXR view space (+Y up, -Z forward), metres.
See docs/worldmodel.md.
"""
