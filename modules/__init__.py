import os

# TF Hub and Model Garden need Keras 2 (tf_keras); this must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# oneDNN keeps 1,024 kernels by default; a training step over the length buckets' shapes needs more, and a kernel
# built again costs time: 3.19 s a 512-token step with room for 16,384, 3.49 s without (bench/RESULTS.md).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")
