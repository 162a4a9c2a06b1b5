"""``vidplug ablate``: the temporal-consistency ablation on DAVIS (Base, +Semantic, +Pixel, +Semantic+Pixel, optional
+Shared seeds) plus the bicubic and per-frame DiffPIR baselines, with identical seeds; resumable, one table."""

from __future__ import annotations

import argparse

from vidplug.cli.common import add_config_args, add_read_args, config_from_args
from vidplug.cli.evaluate import DEFAULT_SIZE, add_davis_args


def register(sub) -> None:
    p = sub.add_parser(
        "ablate", help="consistency ablation on a dataset (DAVIS, REDS, ...) with baselines (one table)",
        description="Runs every ablation row on the same dataset sequences (as `vidplug eval`) into DIR/<row>/ and "
                    "writes DIR/report.md (best bold, second underlined), DIR/report.html, results.csv and "
                    "results.json. The settings flags describe the full method; each row changes one thing. Rerun to resume.")
    add_davis_args(p)
    g = p.add_argument_group("ablation")
    g.add_argument("--shared-seeds", action="store_true", help="add the +Shared seeds row (solver.seed_mode=shared)")
    g.add_argument("--baselines", default="bicubic,diffpir", type=lambda s: tuple(x for x in s.split(",") if x),
                   help="comma-separated baselines: bicubic, diffpir, or '' for none (default: both)")
    g.add_argument("--diffpir-steps", type=int, default=20, help="DiffPIR sampler steps (default 20)")
    g.add_argument("--diffpir-lambda", type=float, default=7.0, help="DiffPIR data-step strength lambda")
    g.add_argument("--diffpir-zeta", type=float, default=0.1, help="DiffPIR fresh-noise share zeta in [0, 1]")
    add_config_args(p)
    add_read_args(p, {"size": DEFAULT_SIZE})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.evaluation import DiffPIRSettings, full_method_config, ranked_table, run_ablation

    full = config_from_args(args, base=full_method_config())
    diffpir = DiffPIRSettings(steps=args.diffpir_steps, lambda_=args.diffpir_lambda, zeta=args.diffpir_zeta)
    out = run_ablation(args.dataset, args.out, full, sequences=args.sequences, split=args.split,
                       resolution=args.resolution, shared_seeds=args.shared_seeds,
                       baselines=args.baselines, diffpir=diffpir, overwrite=args.overwrite,
                       progress=not args.no_progress, videos=not args.no_videos)
    if not out:  # a non-zero rank of a multi-process run
        return 0
    print(ranked_table(out["table"]))
    print(f"-> {args.out}/report.md, {args.out}/report.html (open it, or: vidplug view {args.out})")
    return 0
