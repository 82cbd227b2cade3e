"""Deployment formats of trained students: ONNX (``onnx_export``) and ncnn (``ncnn``)."""
