"""Study of the ES-WMV stopping rule: record every iterate of full-length restorations once, then replay stopping
rules offline on the recordings (the rule only reads the outputs, so a replay is exact and costs no solver time).

    python -m benchmarks.tune_es record --clip bunny=PATH --task sr4 --out DIR [--frames 4 --size 64 --iters 150]
    python -m benchmarks.tune_es replay DIR --tune bunny [--json OUT]

``record`` restores the clip under every noise type x level (vidplug's full method, solver.early_stop off, so the
run goes to the last iteration) and saves per cell: the outputs of every iteration (float16, (iters, T, C, H, W)) and
the ORACLE PSNR curve. ``replay`` runs each candidate rule over every cell and reports, per rule, the worst gap to
the ORACLE best PSNR and the worst drop of the curve before the stop, on the tuning clip and on the others.
The ground truth is used only to score the rules (ORACLE columns), never inside a rule.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

from vidplug.physics.noise import LEVEL_NAMES, NOISE_TYPES


def _cell_config(task: str, noise: str, iters: int, overrides: list[str]):
    from vidplug.robustness import robustness_config

    return robustness_config(task, noise, [f"solver.iters={iters}", "solver.early_stop=false", *overrides])


def record(args: argparse.Namespace) -> None:
    from vidplug.models import Models
    from vidplug.pipeline import resolve_device, restore_video
    from vidplug.solver.video import restore_chunk

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    read = {"max_frames": args.frames, "size": args.size, "start": args.start}
    models = None
    for spec in args.clip:
        name, path = spec.split("=", 1)
        for noise in [f"{t}:{lv}" for t in NOISE_TYPES for lv in LEVEL_NAMES]:
            cell = out / f"{name}_{args.task}_{noise.replace(':', '-')}.pt"
            if cell.exists():
                continue
            cfg = _cell_config(args.task, noise, args.iters, args.overrides)
            if models is None:
                models = Models(cfg, resolve_device(cfg.device))
            traj: list[torch.Tensor] = []
            solver = functools.partial(restore_chunk, on_iterate=lambda it, x, traj=traj: traj.append(x.to(torch.float16)))
            t0 = time.time()
            res = restore_video(path, out / "tmp" / f"{cell.stem}.mp4", cfg, simulate=True, read=read,
                                overwrite=True, progress=False, models=models, chunk_solver=solver,
                                use_distributed=False)
            summary = res.chunks[0] if isinstance(res.chunks, list) else res.chunks
            torch.save({"outputs": torch.stack(traj), "oracle_psnr": summary.get("oracle_psnr"),
                        "settings": {"task": args.task, "noise": noise, "read": read, "iters": args.iters,
                                     "overrides": args.overrides}, "wall_s": time.time() - t0},
                       cell.with_suffix(".tmp"))
            cell.with_suffix(".tmp").rename(cell)
            print(f"{cell.name}: {time.time() - t0:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--clip", action="append", required=True, help="NAME=PATH (repeatable)")
    r.add_argument("--task", default="sr4")
    r.add_argument("--out", required=True)
    r.add_argument("--frames", type=int, default=4)
    r.add_argument("--size", type=int, default=64)
    r.add_argument("--start", type=int, default=0)
    r.add_argument("--iters", type=int, default=150)
    r.add_argument("--set", dest="overrides", action="append", default=[])
    r.set_defaults(func=record)
    args = p.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
