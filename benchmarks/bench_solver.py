"""Solver speed, memory and MFU over a grid of chunk sizes, DDIM steps, precisions, checkpointing and compilation.

    python -m benchmarks.bench_solver [--device cpu|cuda] [--prior tiny|adm-random|tiny-random] [--chunks 1,2,4,8]
        [--steps 2,3,4] [--dtypes fp32,bf16] [--checkpoint both] [--compile both] [--channels-last both]
        [--micro-batch 0,4] [--frame-threads 1,2] [--size 128x256] [--iters 5] --out DIR

One timed iteration is what :func:`vidplug.solver.solve` does per iteration: seeds -> R(z) (K network calls) ->
SR x4 data term -> backward -> Adam step, built from the solver's own pieces (seeds, DDIM reverse, data term,
``fast_prior``, ``backprop_through_r``). The solver's per-iteration bookkeeping (loss log, ES-WMV running sums) is a few elementwise ops
on the frames and is left out. Warm-up iterations (and with ``--compile``, compilation) are not timed.

Reported per configuration: median seconds per iteration, frame-iterations/s (T / median), seconds per restored
frame at ``SolverConfig().iters`` iterations, peak memory, FLOPs per iteration (FlopCounterMode, model FLOPs: K
forward network calls + backward, no checkpoint or micro-batch recomputation), achieved FLOP/s and MFU against the peak of a
large matmul measured on the same device in the same dtype. Writes DIR/bench_solver.json, prints a table and appends
it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmarks.common import (
    AUTOCAST_OF,
    BENCH_PRIORS,
    DTYPES,
    PeakMemory,
    add_report_args,
    append_results,
    bench_main,
    count_flops,
    env_line,
    environment,
    frame_channels,
    load_bench_prior,
    markdown_table,
    mib,
    parse_list,
    parse_size,
    peak_matmul_flops,
    seed_shape,
    time_calls,
)
from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_write_json
from vidplug.physics import build_operator
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_timesteps
from vidplug.runtime import resolve_device
from vidplug.solver.config import SolverConfig
from vidplug.solver.reverse import AUTOCAST, backprop_through_r, fast_prior, frame_workers, reverse_fn
from vidplug.solver.seeds import make_seeds
from vidplug.solver.terms import DataFidelity

log = logging.getLogger("benchmarks.bench_solver")
RESTORE_ITERS = SolverConfig().iters  # "seconds per restored frame" is stated at the solver's default iterations

COLUMNS = [
    ("frames", "T", ""), ("steps", "K", ""), ("dtype", "dtype", ""), ("checkpoint", "ckpt", ""),
    ("compile", "compile", ""), ("channels_last", "NHWC", ""), ("micro_batch", "mb", ""),
    ("frame_threads", "frame thr", ""), ("s_per_iter", "s/iter (median)", ".3f"), ("frame_iters_per_s", "frame-it/s", ".2f"),
    ("s_per_frame", f"s/frame @{RESTORE_ITERS} it", ".1f"), ("peak_mib", "peak MiB", ".0f"),
    ("delta_mib", "peak rise MiB", ".0f"), ("gflop_per_iter", "GFLOP/iter", ".1f"),
    ("achieved_tflops", "TFLOP/s", ".4f"), ("mfu", "MFU", ".3f"), ("status", "status", ""),
]


class SolverIteration:
    """One DMPlug iteration on a simulated SR x4 problem of ``frames`` frames, callable repeatedly."""

    def __init__(self, prior: DiffusionPrior, frames: int, size: tuple[int, int], device: torch.device, *,
                 steps: int, dtype: str, checkpoint: bool, compile: bool, channels_last: bool = False,
                 micro_batch: int = 0, frame_threads: int = 1, seed: int = 0) -> None:
        c, (h, w) = frame_channels(prior), size
        g = torch.Generator().manual_seed(seed)
        op = build_operator("sr4", frames, (h, w), seed=seed, channels=c).to(device)
        clean = torch.rand((frames, c, h, w), generator=g).to(device)  # content does not change the cost
        with torch.no_grad():
            self.data = DataFidelity(op(clean), op)
        # (T, C, H, W) seeds; a latent prior's are (T, 4, H/8, W/8)
        self.seeds = make_seeds(seed_shape(prior, frames, size), mode="independent", generator=g, device=device)
        self.opt = torch.optim.Adam(list(self.seeds.parameters()), lr=1e-2)
        self.prior = fast_prior(prior, compile=compile, channels_last=channels_last)
        self.micro_batch = micro_batch
        self.workers = frame_workers(frame_threads, self.seeds())
        self.reverse = reverse_fn(self.prior, ddim_timesteps(steps, prior.num_train_timesteps), checkpoint=checkpoint,
                                  autocast_dtype=AUTOCAST[AUTOCAST_OF[dtype]], size=size)
        self.iteration = 0

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        z = self.seeds()  # (T, C, H, W) seeds
        backprop_through_r(z, self.reverse, lambda x: [self.data(x, self.iteration)], self.micro_batch,
                           self.workers)
        self.opt.step()
        self.iteration += 1


def model_flops(prior: DiffusionPrior, size: tuple[int, int], device: torch.device, steps: int) -> int:
    """FLOPs of one iteration on one frame, eager fp32 without checkpointing (FLOPs are linear in the frames)."""
    it = SolverIteration(prior, 1, size, device, steps=steps, dtype="fp32", checkpoint=False, compile=False)
    return count_flops(it)


def bench_one(prior, size, device, *, frames, steps, dtype, checkpoint, compile, warmup, iters,
              flops_per_frame: int, peak: float, compile_warmup: int = 0, channels_last: bool = False,
              micro_batch: int = 0, frame_threads: int = 1) -> dict[str, Any]:
    row: dict[str, Any] = {"frames": frames, "steps": steps, "dtype": dtype, "checkpoint": checkpoint,
                           "compile": compile, "channels_last": channels_last, "micro_batch": micro_batch,
                           "frame_threads": frame_threads,
                           "warmup": warmup, "iters": iters, "status": "ok"}
    try:
        it = SolverIteration(prior, frames, size, device, steps=steps, dtype=dtype, checkpoint=checkpoint,
                             compile=compile, channels_last=channels_last, micro_batch=micro_batch,
                             frame_threads=frame_threads)
        for _ in range(compile_warmup if compile else 0):
            it()  # compile outside the memory window: compilation's own memory is not the solver's
        with PeakMemory(device) as mem:
            times = time_calls(it, device, warmup=warmup, iters=iters)
    except torch.cuda.OutOfMemoryError:
        row["status"] = "out of memory"
        return row
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    med = statistics.median(times)
    flops = flops_per_frame * frames
    row.update(
        times_s=times, s_per_iter=med, frame_iters_per_s=frames / med, s_per_frame=RESTORE_ITERS * med / frames,
        peak_mib=mib(mem.peak_bytes), delta_mib=mib(mem.delta_bytes), memory_method=mem.method,
        gflop_per_iter=flops / 1e9, achieved_tflops=flops / med / 1e12, mfu=flops / med / peak,
    )
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    size = parse_size(args.size or ("128x256" if device.type == "cuda" else "32x64"))
    chunks = parse_list(args.chunks or ("1,2,4,8" if device.type == "cuda" else "1,2,4"), int, flag="--chunks")
    steps_list = parse_list(args.steps, int, flag="--steps")
    dtypes = parse_list(args.dtypes, str, allowed=list(DTYPES), flag="--dtypes")
    checkpoints = parse_list(args.checkpoint, bool, flag="--checkpoint")
    compiles = parse_list(args.compile, bool, flag="--compile")
    layouts = parse_list(args.channels_last, bool, flag="--channels-last")
    micro = parse_list(args.micro_batch, int, flag="--micro-batch")
    threads = parse_list(args.frame_threads, int, flag="--frame-threads")
    if any(c < 1 for c in chunks) or any(k < 1 for k in steps_list) or args.iters < 1 or args.warmup < 0 \
            or any(m < 0 for m in micro) or any(n < 0 for n in threads):
        raise VidplugError("--chunks and --steps must be >= 1, --micro-batch and --frame-threads >= 0, "
                           "--iters >= 1, --warmup >= 0")

    env = environment(device)
    prior = load_bench_prior(args.prior, device)
    params = sum(p.numel() for p in prior.parameters())
    peaks = {d: peak_matmul_flops(device, DTYPES[d]) for d in dtypes}
    flops = {k: model_flops(prior, size, device, k) for k in steps_list}
    # channels-last rows last: the conversion is applied to the shared network's weights in place
    grid = [(t, k, d, ck, cp, cl, mb, n) for cl in sorted(set(layouts)) for cp in compiles for d in dtypes
            for ck in checkpoints for mb in micro for k in steps_list for t in chunks for n in threads
            if mb < t or mb == 0]
    rows = []
    for t, k, d, ck, cp, cl, mb, n in tqdm(grid, desc="bench_solver", disable=args.quiet):
        row = bench_one(prior, size, device, frames=t, steps=k, dtype=d, checkpoint=ck, compile=cp,
                        warmup=args.warmup, iters=args.iters, flops_per_frame=flops[k], peak=peaks[d],
                        compile_warmup=args.compile_warmup, channels_last=cl, micro_batch=mb, frame_threads=n)
        rows.append(row)
        log.info("T=%d K=%d %s ckpt=%s compile=%s nhwc=%s mb=%d thr=%d: %s", t, k, d, ck, cp, cl, mb, n,
                 f"{row['s_per_iter']:.3f} s/iter" if row["status"] == "ok" else row["status"])
    result = {
        "environment": env,
        "settings": {"prior": args.prior, "prior_parameters": params, "size_hw": list(size), "task": "sr4",
                     "warmup": args.warmup, "iters": args.iters, "restore_iters": RESTORE_ITERS},
        "peak_flops": {d: peaks[d] for d in dtypes},
        "model_flops_per_frame_iteration": {str(k): flops[k] for k in steps_list},
        "rows": rows,
    }
    out = Path(args.out)
    atomic_write_json(out / "bench_solver.json", result)
    section = report(result, args.note)
    print(section)
    if not args.no_append:
        append_results(section)
    return result


def report(result: dict[str, Any], note: str | None) -> str:
    env, s = result["environment"], result["settings"]
    peaks = ", ".join(f"{d} {v / 1e12:.3f} TFLOP/s" for d, v in result["peak_flops"].items())
    h, w = s["size_hw"]
    lines = [
        f"### bench_solver: prior {s['prior']} ({s['prior_parameters'] / 1e6:.2f} M parameters), SR x4, "
        f"{h}x{w} frames",
        "",
        env_line(env) + ".",
        f"Timed: median of {s['iters']} iterations after {s['warmup']} warm-up. Measured peak (matmul): {peaks}.",
    ]
    if env["device_type"] == "cpu":
        lines.append("CPU run on a host shared with other jobs: times are indicative only.")
    if note:
        lines.append(note)
    lines += ["", markdown_table(result["rows"], COLUMNS)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_solver", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--prior", default="tiny-random", choices=BENCH_PRIORS)
    p.add_argument("--chunks", default=None, help="frames per chunk, comma-separated (default 1,2,4 on CPU, "
                                                   "1,2,4,8 on CUDA)")
    p.add_argument("--steps", default="3", help="DDIM steps K, comma-separated (default 3)")
    p.add_argument("--dtypes", default="fp32", help="fp32,bf16,fp16: network precision (autocast)")
    p.add_argument("--checkpoint", default="off", help="on | off | both")
    p.add_argument("--compile", default="off", help="on | off | both (torch.compile of the prior network)")
    p.add_argument("--channels-last", default="off", help="on | off | both (NHWC layout of the prior network)")
    p.add_argument("--micro-batch", default="0", help="frames per backward pass through R, comma-separated "
                                                      "(0 = whole chunk; values >= T are skipped)")
    p.add_argument("--frame-threads", default="1", help="solver.frame_threads, comma-separated (1 = one batched "
                                                         "call; 0 = auto; n = R's frames over n threads)")
    p.add_argument("--size", default=None, help="HEIGHTxWIDTH (default 32x64 on CPU, 128x256 on CUDA)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per configuration")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations before timing")
    p.add_argument("--compile-warmup", type=int, default=3, help="extra untimed iterations with --compile on")
    add_report_args(p, "directory for bench_solver.json")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_solver", build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
