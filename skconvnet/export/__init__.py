"""Export: fitted estimators to ONNX (with the scikit-learn steps after them), networks
converted with tf2onnx, int8 quantization on ONNX Runtime."""
