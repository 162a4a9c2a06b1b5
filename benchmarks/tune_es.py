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
import json
import sys
import time
from pathlib import Path

import torch

from vidplug.physics.noise import LEVEL_NAMES, NOISE_TYPES


def _cell_config(task: str, noise: str, iters: int, overrides: list[str]):
    from vidplug.evaluation.robustness import robustness_config

    return robustness_config(task, noise, [f"solver.iters={iters}", "solver.early_stop=false", *overrides])


def record(args: argparse.Namespace) -> None:
    from vidplug.methods import DMPlugMethod
    from vidplug.models import Models
    from vidplug.pipeline import restore_video
    from vidplug.runtime import resolve_device

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
            solver = DMPlugMethod(on_iterate=lambda it, x, traj=traj: traj.append(x.to(torch.float16)))
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


GRID = {"window": (3, 5, 8, 10, 15, 20, 30), "patience": (3, 5, 8, 10, 15, 20, 30, 50), "mode": ("window", "ema"),
        "downscale": (1, 4)}
GAP_GOAL, DROP_GOAL = 0.5, 0.3  # dB: returned within 0.5 dB of the ORACLE best; fired before a 0.3 dB fall


def replay_cell(cell: dict, rule: dict) -> dict:
    """Run stopping ``rule`` over one recorded cell: stop/choice iterations and their ORACLE scores."""
    from vidplug.solver.early_stop import ESWMV

    es = ESWMV(**rule)
    curve = cell["oracle_psnr"]
    for it, x in enumerate(cell["outputs"]):
        es.update(x.float(), it)
    n = len(curve)
    chosen = es.best_iteration if es.best_iteration is not None else n - 1
    stop = es.stop_iteration
    at = stop if stop is not None else n - 1  # never fired: the run goes on to the end
    best = max(curve)
    return {"stop": stop, "chosen": chosen, "gap": best - curve[chosen], "drop": max(curve[: at + 1]) - curve[at],
            "returned": curve[chosen], "best": best, "best_it": curve.index(best), "last": curve[-1]}


def variance_series(cell: dict, window: int, mode: str, downscale: int) -> list[float]:
    """The rule's variance after each iteration (NaN before its window fills): one pass of the real detector."""
    from vidplug.solver.early_stop import ESWMV

    es, out = ESWMV(window, 10**9, mode=mode, downscale=downscale), []
    for it, x in enumerate(cell["outputs"]):
        es.update(x.float(), it)
        out.append(float(es.last_variance))
    return out


def decide(series: list[float], curve: list[float], patience: int) -> dict:
    """ESWMV's decision on a precomputed variance series (strict new minimum, patience, frozen once fired): the
    sweep over patience costs nothing. The reported presets are re-run through ESWMV itself (replay_cell)."""
    best, best_it, since, stop = float("inf"), None, 0, None
    for it, v in enumerate(series):
        if v != v:  # NaN: window not full
            continue
        if v < best:
            best, best_it, since = v, it, 0
        else:
            since += 1
            if since >= patience:
                stop = it
                break
    n = len(curve)
    chosen = best_it if best_it is not None else n - 1
    at = stop if stop is not None else n - 1
    top = max(curve)
    return {"stop": stop, "chosen": chosen, "gap": top - curve[chosen], "drop": max(curve[: at + 1]) - curve[at]}


def bicubic_psnr(path: str, settings: dict) -> float:
    """PSNR of the pseudo-inverse / bicubic estimate of the cell's observation (same seed, same noise)."""
    from vidplug.io import read_video
    from vidplug.metrics.fidelity import psnr
    from vidplug.physics import degrade

    clean = read_video(path, **settings["read"]).frames
    y, op = degrade(clean, settings["task"], seed=0, noise=settings["noise"])
    return psnr(op.A_dagger(y), clean)[0]


def met(r: dict) -> bool:
    """Both goals: returned within GAP_GOAL of the ORACLE best, and the curve had not fallen more than DROP_GOAL when
    the rule fired (or, never fired, by the last iteration)."""
    return r["gap"] <= GAP_GOAL and r["drop"] <= DROP_GOAL


def _score(results: list[dict]) -> tuple[float, float]:
    """Worst normalised violation over cells (<= 1: every goal met), then the mean gap."""
    worst = max(max(r["gap"] / GAP_GOAL, r["drop"] / DROP_GOAL) for r in results)
    return worst, sum(r["gap"] for r in results) / len(results)


def replay(args: argparse.Namespace) -> None:
    import itertools

    from vidplug.solver.config import ES_PRESETS

    cells = {p.stem: torch.load(p) for p in sorted(Path(args.dir).glob("*.pt"))}
    tune = {k: v for k, v in cells.items() if k.startswith(args.tune + "_")}
    scored = []
    grid = itertools.product(GRID["window"], GRID["mode"], GRID["downscale"]) if tune else ()
    for window, mode, ds in grid:
        series = [(variance_series(c, window, mode, ds), c["oracle_psnr"]) for c in tune.values()]
        for patience in GRID["patience"]:
            res = [decide(v, curve, patience) for v, curve in series]
            scored.append((_score(res), {"window": window, "patience": patience, "mode": mode, "downscale": ds}))
    scored.sort(key=lambda s: s[0])
    # no cells of the tuning clip here (e.g. another task): replay the current tuned preset
    best_rule = scored[0][1] if scored else dict(ES_PRESETS["tuned"])
    named = {"published": dict(ES_PRESETS["published"]), "tuned": best_rule}
    report = {"tune_clip": args.tune, "grid": GRID, "top": [{"score": s, "rule": r} for s, r in scored[:10]],
              "cells": {name: {k: replay_cell(c, rule) for k, c in cells.items()} for name, rule in named.items()},
              "rules": named}
    clips = dict(c.split("=", 1) for c in args.clip)
    report["bicubic_psnr"] = {k: bicubic_psnr(clips[k.split("_")[0]], c["settings"]) for k, c in cells.items()
                              if k.split("_")[0] in clips}
    for name, rule in named.items():
        print(f"## {name}: {rule}")
        for k, r in report["cells"][name].items():
            flag = "met" if met(r) else "NOT met"
            print(f"{k:32s} stop {str(r['stop']):>4s} chosen {r['chosen']:3d} returned {r['returned']:.2f} "
                  f"best {r['best']:.2f}@{r['best_it']:3d} last {r['last']:.2f} gap {r['gap']:.2f} "
                  f"drop {r['drop']:.2f} {flag}")
    print("top rules on the tuning clip:", *[f"{s} {r}" for s, r in scored[:5]], sep="\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(report))


def markdown(report: dict) -> str:
    """Per (clip, task): DMPlug Table 5 layout (noise types as columns, ``low · high`` in a cell) of returned PSNR /
    gap for each named rule and bicubic, then the stop iteration and the ORACLE drop at the stop, and goal counts."""
    keys = list(next(iter(report["cells"].values())))
    groups = list(dict.fromkeys("_".join(k.split("_")[:2]) for k in keys))
    out = []
    for g in groups:
        clip, task = g.split("_", 1)
        role = "tuning clip" if clip == report["tune_clip"] else "report clip"
        out += [f"**{task}, {clip} ({role})** -- cells: returned PSNR / gap (dB), low · high", "",
                "| rule | " + " | ".join(NOISE_TYPES) + " | goals met |", "|---|" + "---|" * (len(NOISE_TYPES) + 1)]
        for name in report["cells"]:
            cells, n_met = [], 0
            for t in NOISE_TYPES:
                parts = []
                for lv in LEVEL_NAMES:
                    r = report["cells"][name].get(f"{g}_{t}-{lv}")
                    if r is None:
                        parts.append("-")
                        continue
                    n_met += met(r)
                    parts.append(f"{r['returned']:.2f} / {r['gap']:.2f}")
                cells.append(" · ".join(parts))
            out.append(f"| ES-WMV {name} | " + " | ".join(cells) + f" | {n_met}/{2 * len(NOISE_TYPES)} |")
        bic = report.get("bicubic_psnr", {})
        out.append("| bicubic | " + " | ".join(" · ".join(f"{bic[k]:.2f}" if (k := f"{g}_{t}-{lv}") in bic else "-"
                                                         for lv in LEVEL_NAMES) for t in NOISE_TYPES) + " | |")
        any_cell = report["cells"][next(iter(report["cells"]))]
        out.append("| ORACLE best (it) | " + " | ".join(" · ".join(
            f"{r['best']:.2f} ({r['best_it']})" if (r := any_cell.get(f"{g}_{t}-{lv}")) else "-"
            for lv in LEVEL_NAMES) for t in NOISE_TYPES) + " | |")
        for name in report["cells"]:
            out.append(f"| {name}: fired at it (ORACLE drop dB) | " + " | ".join(" · ".join(
                (f"{'never' if r['stop'] is None else r['stop']} ({r['drop']:.2f})"
                 if (r := report["cells"][name].get(f"{g}_{t}-{lv}")) else "-")
                for lv in LEVEL_NAMES) for t in NOISE_TYPES) + " | |")
        out.append("")
    return "\n".join(out)


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
    p2 = sub.add_parser("replay")
    p2.add_argument("dir")
    p2.add_argument("--tune", required=True, help="NAME of the tuning clip (cells NAME_*.pt)")
    p2.add_argument("--json", default=None)
    p2.add_argument("--markdown", default=None, help="write the per-clip tables here")
    p2.add_argument("--clip", action="append", default=[], help="NAME=PATH: also score bicubic on that clip's cells")
    p2.set_defaults(func=replay)
    args = p.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
