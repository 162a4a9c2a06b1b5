#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels that vidplug needs and the GPU machine's image lacks, into .whl/
# (git-ignored). The device machine has Python 3.12, PyTorch, torchvision, numpy, scipy, scikit-image, OpenCV,
# matplotlib, safetensors and huggingface-hub, and no network. See benchmarks/gpu_suite.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p .whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl \
    deepinv==0.5.0 diffusers==0.42.1 av==18.1.0 natsort==8.4.0 open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 \
    lpips==0.1.4
du -sh .whl
