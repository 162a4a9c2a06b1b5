"""Time of the degradation operators: ``A`` and ``A_adjoint`` of each task's operator on one chunk, as the solver
calls them (the least-squares start, the data term of every iteration, the measurement projection).

For the tasks with motion blur a second row times deepinv's convolution with the whole 61x61 kernels, which
:class:`vidplug.physics.blur.MotionBlur` crops to their nonzero taps (the same operator).

    python -m benchmarks.bench_operators [--tasks temporal+deblur,deblur,sr4,temporal,inpaint] [--frames 8]
        [--size 128x128] [--threads 2] [--iters 20] [--note TEXT] [--no-append]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import deepinv.physics.functional as dF
import torch

from benchmarks.common import (
    append_results,
    bench_main,
    env_line,
    environment,
    markdown_table,
    parse_list,
    parse_size,
    time_calls,
)
from vidplug.physics import TASKS, build_operator
from vidplug.physics.blur import MotionBlur

COLUMNS = [("task", "operator", ""), ("A", "A (ms)", ".2f"), ("A_adjoint", "A_adjoint (ms)", ".2f")]


def _blur(op) -> MotionBlur | None:
    """The operator's motion blur: itself or one of its parts (a composed operator's modules)."""
    return next((m for m in op.modules() if isinstance(m, MotionBlur)), None)


def measure(task: str, frames: int, size: tuple[int, int], iters: int) -> list[dict]:
    """Median milliseconds of ``A`` and ``A_adjoint`` of ``task``'s operator; for blur, also with whole kernels."""
    op = build_operator(task, frames, size, noise_sigma=0.0)
    x = torch.rand(frames, 3, *size)
    y = op.A(x)
    cpu = torch.device("cpu")

    def ms(fn) -> float:
        return 1000 * statistics.median(time_calls(fn, cpu, warmup=5, iters=iters))

    rows = [{"task": task, "A": ms(lambda: op.A(x)), "A_adjoint": ms(lambda: op.A_adjoint(y))}]
    blur = _blur(op)
    if blur is not None and blur.fft:
        k = blur.kernels
        rows.append({"task": f"{task}: its blur with the whole {k.shape[-1]}x{k.shape[-1]} kernels",
                     "A": ms(lambda: dF.conv2d_fft(x, k, padding=blur.padding)),
                     "A_adjoint": ms(lambda: dF.conv_transpose2d_fft(x, k, padding=blur.padding))})
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="temporal+deblur,deblur,sr4,temporal,inpaint",
                   type=lambda s: parse_list(s, allowed=TASKS, flag="--tasks"))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH of the clean frames")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--iters", type=int, default=20, help="timed calls per row (median)")
    p.add_argument("--note", default=None, help="a line added under the table in RESULTS.md")
    p.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    return p


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    rows = [row for task in args.tasks for row in measure(task, args.frames, args.size, args.iters)]
    h, w = args.size
    section = "\n".join([
        f"## bench_operators: {args.frames} frames at {h}x{w}", "",
        env_line(environment(torch.device("cpu"))), "",
        f"Median of {args.iters} calls after 5 warm-up.", "",
        markdown_table(rows, COLUMNS)] + ([f"\n{args.note}"] if args.note else []))
    print(section)
    if not args.no_append:
        append_results(section)


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_operators", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
