"""``vidplug robustness CLIP_OR_DAVIS_ROOT --task sr4 --out DIR``: every noise type x level, same seeds; resumable."""

from __future__ import annotations

import argparse

from vidplug.cli.common import add_read_args, comma_names, command_read_defaults, read_flags


def register(sub) -> None:
    p = sub.add_parser(
        "robustness", help="restore a clip under every noise type x level (DMPlug's Table 5); resumable",
        description="Degrade the clip with gaussian, impulse, shot and speckle noise at the low and high levels "
                    "(ImageNet-C severities 2 and 4), restore it with vidplug, per-frame DMPlug and bicubic, and "
                    "write DIR/results.json, results.csv, report.md, report.html and plots/psnr_<type>.png. The "
                    "solver is never told the noise; ES-WMV picks the returned iterate. Rerun the same command to resume.")
    p.add_argument("input", metavar="CLIP_OR_DAVIS_ROOT",
                   help="clean video file, frame folder, or a dataset root (DAVIS 2017, folders of frames or videos)")
    p.add_argument("--task", default="sr4", help="sr4 | sr | inpaint | temporal | deblur | temporal+deblur")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (rerun the same command to resume)")
    p.add_argument("--sequence", default=None, help="dataset sequence (default: the first; DAVIS: of val)")
    p.add_argument("--types", type=comma_names(example="impulse,shot"), default=None, metavar="A,B",
                   help="noise types (default: all four)")
    p.add_argument("--levels", type=comma_names(example="low,high"), default=None,
                   metavar="low,high", help="levels (default: low,high)")
    p.add_argument("--methods", type=comma_names(example="vidplug,bicubic"), default=None,
                   metavar="A,B", help="vidplug, dmplug (per frame), bicubic (default: all three)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every cell, e.g. --set solver.iters=100 --set solver.es_preset=published")
    p.add_argument("--overwrite", action="store_true", help="discard earlier results in DIR and start over")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_read_args(p, {"max_frames": 8, "size": 256})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.evaluation.robustness import run_robustness

    # the read: section: this command's defaults <- the frame-selection flags <- --set read.* (as for every config)
    read = [f"read.{k}={v}" for k, v in command_read_defaults(args).items()]
    read += [f"{k}={v}" for k, v in read_flags(args).items()]
    out = run_robustness(args.input, args.out, args.task, overrides=[*read, *args.overrides],
                         types=args.types, levels=args.levels, methods=args.methods, sequence=args.sequence,
                         overwrite=args.overwrite, progress=not args.no_progress)
    print(f"robustness of {out['task']} on {out['clip']}: {len(out['rows'])} cells -> {args.out}/report.md, "
          f"{args.out}/report.html (open it, or: vidplug view {args.out})")
    return 0
