#!/usr/bin/env bash
# transform vs raw Keras predict on an NVIDIA GPU, with Keras on JAX (no TensorFlow needed):
# 224x224, block5_pool, batch 128, float32 and bfloat16, random images, in one process.
# Goals: >= 0.9x raw Keras, >= 11,000 images/s in bfloat16 (on one H200).
#
# Where Keras is not installed (a JAX-only machine without network), put its wheels in .whl/
# first, on a machine with pip access (Python 3.12 shown):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl keras namex optree
#
#   bash benchmarks/gpu.sh [--images 4096] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/skconvnet-site .whl/*.whl
    export PYTHONPATH="/tmp/skconvnet-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec python3 benchmarks/bench_extract.py --size 224 --layer block5_pool --batch-size 128 \
    --images 4096 "$@"
