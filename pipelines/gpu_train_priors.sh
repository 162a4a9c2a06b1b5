#!/usr/bin/env bash
# Train variants of the bundled `tiny` prior side by side on one GPU within a fixed time (a device lease), each
# continuing the bundled weights (--init-from), and pack each variant's exported prior (no checkpoint) as NAME.tar.
#
#   pipelines/gpu_train_priors.sh DATA OUT MINUTES NAME="FLAGS" [NAME="FLAGS" ...]
#
# DATA holds images/ and videos/ as pipelines/train_tiny_prior.sh stages them (that script fetches them; a GPU
# machine without network gets them carried). Every variant trains on the same data with configs/train/tiny.yaml,
# then its FLAGS; MINUTES bounds each variant's training (--time-limit), so the whole script takes about
# MINUTES + 1.5 (H200, session 14: 416 s for 5.5). The tiny UNet cannot fill an H200 alone: the variants share it.
# Session 14's call (benchmarks/RESULTS.md, "Issue 18, session 14"), carrying .whl and .gpu:
#
#   pipelines/gpu_train_priors.sh .gpu/data "$OUT" 5.5 a="--batch 128" b="--batch 128 --scale-min 0.1" \
#       c="--batch 32 --size 128 --scale-min 0.1"
set -uo pipefail
DATA=$(realpath "$1") OUT=$(realpath -m "$2") MINUTES=$3  # before the cd: paths relative to the caller's folder
cd "$(dirname "$0")/.."
shift 3
PY=${PYTHON:-python3}
mkdir -p "$OUT/runs"
pids=()
for spec in "$@"; do
    name=${spec%%=*} flags=${spec#*=}
    # shellcheck disable=SC2086  # FLAGS is a list of flags
    "$PY" -m vidplug train-prior "$DATA"/images "$DATA"/videos/bikes.mp4 "$DATA"/videos/bigbuckbunny.mp4 \
        --out "$OUT/runs/$name" --config configs/train/tiny.yaml --init-from vidplug/prior/weights/tiny \
        --steps 1000000 --save-every 500 --sample-every 0 --time-limit "$MINUTES" --device "${DEVICE:-cuda}" \
        --no-progress $flags >"$OUT/runs/$name.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; echo "exit $? ($pid)"; done
for spec in "$@"; do
    name=${spec%%=*}
    echo "== $name: $(grep -v Warning "$OUT/runs/$name.log" | tail -n 1)"
    tar -C "$OUT/runs" -cf "$OUT/$name.tar" --exclude=checkpoint.pt "$name" "$name.log" \
        && rm -rf "${OUT:?}/runs/$name" "$OUT/runs/$name.log"
done
rmdir "$OUT/runs" 2>/dev/null || true
