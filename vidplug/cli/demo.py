"""``vidplug demo``: the main job on bundled defaults (what ``make demo`` runs)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("demo", help="restore the bundled sample clip (SR x4) and compare with baselines")
    p.add_argument("--out", default="demo_out", help="output folder")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of the clip")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, e.g. --set solver.iters=50")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.demo import run_demo

    summary = run_demo(args.out, overwrite=args.overwrite, max_frames=args.max_frames, overrides=args.overrides,
                       progress=not args.no_progress)
    print(summary["text"])
    print(f"outputs in {summary['out_dir']}/: restored.mp4, side_by_side.mp4, results.md, results.json, report.html "
          f"(open it in a browser, or: vidplug view {summary['out_dir']})")
    return 0
