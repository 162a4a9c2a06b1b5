"""How fast does DMPlug converge, and where does ES-WMV stop? SR x4 on the bundled clip.

    python -m benchmarks.bench_convergence [--prior tiny] [--frames 8] [--iters 300] [--size HxW]
        [--init random|inversion] --out DIR

Three solves of the same simulated problem (same observation, same initial seeds: DMPlug's random seeds, or with
``--init inversion`` the DDIM inversion of the bicubic estimate that ``solver.init=inversion`` uses): Adam and L-BFGS for ``--iters``
iterations without early stopping, and Adam with ES-WMV. The PSNR curve comes from the solver's ``reference=``
argument (``SolveResult.oracle_psnr``: mean frame PSNR of each iterate against the ground truth). It is only
*measured* here: iterations to 95 % of the final PSNR (in dB) read the curve afterwards, and the only value chosen by
the ground truth is the best iterate, in the column labelled ORACLE. The ES-WMV row reports the iterate the solver
itself returned (chosen without the reference) and its PSNR against Adam's final and the oracle-best PSNR.

Writes DIR/bench_convergence.json (curves included) and DIR/convergence.png, prints a table and appends it to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    BENCH_PRIORS,
    add_report_args,
    append_results,
    bench_main,
    env_line,
    environment,
    load_bench_prior,
    markdown_table,
    parse_size,
)
from vidplug.demo import sample_clip
from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.io import read_video
from vidplug.io.atomic import atomic_write_json, atomic_write_with
from vidplug.metrics.fidelity import psnr
from vidplug.physics import build_operator
from vidplug.runtime import resolve_device
from vidplug.solver import SolverConfig, solve

log = logging.getLogger("benchmarks.bench_convergence")
FRACTION = 0.95  # "converged" = PSNR within 95 % (in dB) of the run's final PSNR

RUNS = {  # label -> SolverConfig changes; all share iters, the seeds and the observation
    "adam": {"optimizer": "adam", "early_stop": False},
    "lbfgs": {"optimizer": "lbfgs", "early_stop": False},
    "adam + ES-WMV": {"optimizer": "adam", "early_stop": True},
}

CONVERGENCE_COLUMNS = [
    ("run", "run", ""), ("iterations_run", "iters run", ""), ("stopped_by", "stopped by", ""),
    ("final_psnr", "final PSNR (dB)", ".2f"), ("iters_to_95", "iters to 95% of final", ""),
    ("seconds_to_95", "s to 95%", ".1f"), ("wall_s", "total s", ".1f"),
    ("oracle_best_psnr", "ORACLE best PSNR (dB)", ".2f"), ("oracle_best_iteration", "ORACLE best iter", ""),
]
ES_COLUMNS = [
    ("stopped_at", "ES-WMV stopped after (iters)", ""), ("chosen_iteration", "returned iterate", ""),
    ("chosen_psnr", "its PSNR (dB)", ".2f"), ("adam_final_psnr", "Adam final PSNR (dB)", ".2f"),
    ("vs_final", "vs final (dB)", "+.2f"), ("oracle_best_psnr", "ORACLE best PSNR (dB)", ".2f"),
    ("vs_oracle", "vs ORACLE (dB)", "+.2f"), ("saved", "iterations saved", ".0%"),
]


def iterations_to_fraction(curve: list[float | None], fraction: float = FRACTION) -> int | None:
    """1-based count of iterations until the curve first reaches ``fraction`` of its last finite value."""
    finite = [v for v in curve if v is not None and v == v]
    if not finite:
        return None
    target = fraction * finite[-1]
    return next(i + 1 for i, v in enumerate(curve) if v is not None and v >= target)


def summarise(label: str, res, reference: torch.Tensor) -> dict[str, Any]:
    curve = res.oracle_psnr or []
    n95 = iterations_to_fraction(curve)
    finite = [(v, i) for i, v in enumerate(curve) if v == v]
    best, best_it = max(finite) if finite else (None, None)
    per_iter = 1.0 / res.iters_per_s  # seconds per iteration over all attempts
    return {
        "run": label, "iterations_run": res.iterations_run, "stopped_by": res.stopped_by, "lr": res.lr,
        "final_psnr": curve[-1] if curve else None, "iters_to_95": n95,
        "seconds_to_95": None if n95 is None else n95 * per_iter, "wall_s": res.wall_time_s,
        "oracle_best_psnr": best, "oracle_best_iteration": best_it, "chosen_iteration": res.chosen_iteration,
        "returned_psnr": psnr(res.frames, reference)[0], "notes": res.notes, "oracle_psnr_curve": curve,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.frames < 1 or args.iters < 1:
        raise VidplugError("--frames and --iters must be >= 1")
    device = resolve_device(args.device)
    env = environment(device)
    size = parse_size(args.size) if args.size else None
    try:
        prior = load_bench_prior(args.prior, device)
    except MissingWeightsError as exc:
        raise VidplugError(f"{exc}; or run with --prior tiny-random for the mechanics") from None
    clean = read_video(sample_clip(), max_frames=args.frames, size=size).frames.to(device)  # (T, 3, H, W)
    t, c, h, w = clean.shape
    op = build_operator("sr4", t, (h, w), seed=args.seed, noise_sigma=args.noise_sigma).to(device)
    with torch.no_grad():
        y = op(clean)  # (T, 3, H/4, W/4) noisy observation
        bicubic = psnr(op.A_dagger(y).clamp(0, 1), clean)[0]
    z_init = None
    if args.init == "inversion":
        from vidplug.prior.base import to_model_range
        from vidplug.prior.ddim import ddim_invert, ddim_timesteps

        with torch.no_grad():
            z_init = ddim_invert(to_model_range(op.A_dagger(y).clamp(0, 1)), prior,
                                 ddim_timesteps(args.steps, prior.num_train_timesteps))
    rows = []
    for label, change in RUNS.items():
        cfg = SolverConfig(iters=args.iters, num_steps=args.steps, **change)
        log.info("%s: %d iterations on %d frames of %dx%d", label, args.iters, t, h, w)
        res = solve(y, op, prior, cfg, generator=torch.Generator().manual_seed(args.seed), reference=clean,
                    progress=not args.quiet, desc=label, z_init=z_init)
        rows.append(summarise(label, res, clean))
    adam, es = rows[0], rows[2]
    es_row = {
        "stopped_at": es["iterations_run"], "chosen_iteration": es["chosen_iteration"],
        "chosen_psnr": es["returned_psnr"], "adam_final_psnr": adam["final_psnr"],
        "vs_final": _diff(es["returned_psnr"], adam["final_psnr"]), "oracle_best_psnr": adam["oracle_best_psnr"],
        "vs_oracle": _diff(es["returned_psnr"], adam["oracle_best_psnr"]),
        "saved": 1.0 - es["iterations_run"] / args.iters, "stopped_by": es["stopped_by"],
    }
    result = {
        "environment": env,
        "settings": {"prior": args.prior, "init": args.init, "frames": t, "size_hw": [h, w], "task": "sr4", "iters": args.iters,
                     "num_steps": args.steps, "noise_sigma": args.noise_sigma, "seed": args.seed,
                     **{f"es_{k}": v for k, v in SolverConfig().es_settings().items()}},
        "bicubic_psnr": bicubic, "runs": rows, "es_wmv": es_row,
    }
    out = Path(args.out)
    atomic_write_json(out / "bench_convergence.json", result)
    _plot(rows, es_row, bicubic, out / "convergence.png")
    section = report(result, args.note)
    print(section)
    if not args.no_append:
        append_results(section)
    return result


def _diff(a, b):
    return None if a is None or b is None else a - b


def _plot(rows, es_row, bicubic, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows[:2]:
        ax.plot(range(len(r["oracle_psnr_curve"])), r["oracle_psnr_curve"], label=r["run"])
    ax.axhline(bicubic, color="gray", linestyle=":", label="bicubic")
    ax.axvline(es_row["stopped_at"] - 1, color="k", linestyle="--", label="ES-WMV stop")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR vs ground truth (dB)")
    ax.legend()
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def report(result: dict[str, Any], note: str | None) -> str:
    s, env = result["settings"], result["environment"]
    lines = [
        f"### bench_convergence: prior {s['prior']}, SR x4 (noise sigma {s['noise_sigma']}), bundled clip, "
        f"{s['frames']} frames of {s['size_hw'][0]}x{s['size_hw'][1]}, K={s['num_steps']}, {s['iters']} iterations, "
        f"{s.get('init', 'random')} initial seeds",
        "",
        env_line(env) + ".",
        f"Bicubic (A_dagger) PSNR: {result['bicubic_psnr']:.2f} dB. ES-WMV: {s['es_mode']} window {s['es_window']}, "
        f"patience {s['es_patience']}, downscale {s['es_downscale']}. Columns marked ORACLE use the ground truth; nothing else does.",
    ]
    if env["device_type"] == "cpu":
        lines.append("CPU run on a host shared with other jobs: seconds are indicative only.")
    if s["prior"] == "tiny-random":
        lines.append("Random-weight prior: these numbers show the mechanics only; rerun with --prior tiny.")
    if note:
        lines.append(note)
    lines += ["", markdown_table(result["runs"], CONVERGENCE_COLUMNS), "",
              markdown_table([result["es_wmv"]], ES_COLUMNS)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_convergence", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--prior", default="tiny", choices=BENCH_PRIORS)
    p.add_argument("--frames", type=int, default=8, help="frames of the clip, restored as one chunk")
    p.add_argument("--iters", type=int, default=300, help="iterations of each run")
    p.add_argument("--steps", type=int, default=3, help="DDIM steps K")
    p.add_argument("--size", default=None, help="resize the clip to HEIGHTxWIDTH (default: native 128x256)")
    p.add_argument("--noise-sigma", type=float, default=0.01, help="measurement noise on the [-1, 1] scale")
    p.add_argument("--seed", type=int, default=0, help="seeds the observation noise and the initial seeds")
    p.add_argument("--init", default="random", choices=["random", "inversion"],
                   help="initial seeds: random (DMPlug) or DDIM inversion of the bicubic estimate")
    add_report_args(p, "directory for bench_convergence.json and convergence.png")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_convergence", build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
