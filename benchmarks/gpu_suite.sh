#!/usr/bin/env bash
# Issue 7's GPU measurements in a few calls of the device tool, each well under its 10-minute limit:
#
#   bash benchmarks/gpu_wheels.sh                       # here, once: wheels the device image lacks -> .whl/
#   device run (carry .whl):  bash benchmarks/gpu_suite.sh memory
#   device run (carry .whl):  bash benchmarks/gpu_suite.sh eager
#   device run (carry .whl):  bash benchmarks/gpu_suite.sh fast compile
#   device run (carry .whl):  bash benchmarks/gpu_suite.sh tiny
#
# Results (JSON per benchmark, suite.md with every table, suite.log) land in $OUT (the device tool's return folder)
# or bench_out/gpu; copy the tables into benchmarks/RESULTS.md with the device and commit they name.
# SUITE_DEVICE=cpu SUITE_SMOKE=1 runs the same commands at toy sizes, to check the script without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench_out/gpu}
DEVICE=${SUITE_DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "installing the carried wheels failed"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
LOG="$OUT/suite.log"
MD="$OUT/suite.md"
if [ -n "${SUITE_SMOKE:-}" ]; then  # toy sizes: the random tiny prior, 32x64, one timed iteration
    ADM=(--prior tiny-random --size 32x64 --iters 1 --warmup 1); BIG=4; MB=2
    TINY=(--size 32x64 --chunks 1,2 --steps 3 --iters 1 --warmup 1); CONV=(--frames 2 --size 32x64 --iters 3)
    MEM=(--prior tiny-random --size 32x64 --chunks 1,2,4 --flop-steps 3 --validate-size 32x64 --validate-frames 2)
else
    ADM=(--prior adm-random --size 256x256 --iters 5 --warmup 2); BIG=16; MB=4
    TINY=(--size 128x256 --chunks 1,8,32 --steps 2,3,4 --iters 5); CONV=(--frames 8 --iters 300)
    MEM=()
fi
{ command -v nvidia-smi >/dev/null && nvidia-smi; git log -1 --format='commit %h %s' 2>/dev/null; } >>"$LOG" 2>&1

bench() {  # bench NAME MODULE ARGS...: one benchmark, its JSON in $OUT/NAME/, its table appended to suite.md
    local name=$1 module=$2; shift 2
    echo "== $name: $module $*" | tee -a "$LOG"
    local start=$SECONDS
    "$PY" -m "benchmarks.$module" --device "$DEVICE" --no-append --quiet --out "$OUT/$name" "$@" >"$OUT/$name.md.tmp" 2>>"$LOG"
    local rc=$?
    { echo; echo "<!-- $name: exit $rc, $((SECONDS - start)) s -->"; cat "$OUT/$name.md.tmp"; } >>"$MD"
    rm -f "$OUT/$name.md.tmp"
    echo "   exit $rc in $((SECONDS - start)) s" | tee -a "$LOG"
}

for part in "${@:-eager}"; do
    case "$part" in
    memory)  # FLOPs per forward and activation memory of ADM-256 (meta device), predicted chunk sizes
        bench memory bench_memory "${MEM[@]}" ;;
    eager)  # fp32 vs bf16 eager, MFU, at 1 and 4 frames; the big chunk with checkpointing / micro-batching
        bench eager bench_solver "${ADM[@]}" --chunks 1,4 --dtypes fp32,bf16
        bench big bench_solver "${ADM[@]}" --chunks "$BIG" --dtypes fp32,bf16 --checkpoint both --micro-batch 0,"$MB" ;;
    fast)  # layout and micro-batch size at the big chunk, bf16
        bench fast bench_solver "${ADM[@]}" --chunks 4,"$BIG" --dtypes bf16 --channels-last both --micro-batch 0,2,"$MB" ;;
    compile)  # torch.compile of the network (compilation untimed)
        bench compile bench_solver "${ADM[@]}" --chunks 4 --dtypes bf16 --channels-last on --compile both ;;
    tiny)  # the bundled prior: speed grid and time to a good result
        bench tiny bench_solver --prior tiny "${TINY[@]}" --dtypes fp32,bf16
        bench convergence bench_convergence --prior tiny "${CONV[@]}" ;;
    *) echo "unknown part '$part': memory | eager | fast | compile | tiny" | tee -a "$LOG"; exit 2 ;;
    esac
done
echo "done: $MD" | tee -a "$LOG"
