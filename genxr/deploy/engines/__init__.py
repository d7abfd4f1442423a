"""Inference engines behind one interface (:mod:`.base`: torch, ONNX Runtime, TensorRT, and the
engine-name helpers) and the model streams that run on them: the world model's (:mod:`.world`)
and the avatar's (:mod:`.avatar`)."""
