"""ONNX export of genxr's models with parity checks: the world-model student's chunk step
(:mod:`.student`), its frame decoder (:mod:`.decoder`), the avatar's step (:mod:`.avatar`) and its
non-causal baseline (:mod:`.avatar_baseline`), folded / pruned students (:mod:`.compressed`), and
the content-keyed cache the engines load them from (:mod:`.cache`)."""
