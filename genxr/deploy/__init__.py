"""Export to ONNX, inference engines (torch, ONNX Runtime, TensorRT) and Ray Serve deployments."""
