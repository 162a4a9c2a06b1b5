"""``vidplug degrade INPUT --task TASK --out OUT``: write the observation a task's operator makes of a clean video."""

from __future__ import annotations

import argparse

from vidplug.cli.common import NOISE_HELP, add_read_args, read_kwargs


def register(sub) -> None:
    p = sub.add_parser("degrade", help="simulate a degradation (sr4, inpaint, temporal, deblur, temporal+deblur)")
    p.add_argument("input", help="clean video file or image folder")
    p.add_argument("--task", required=True, help="sr4 | sr | inpaint | temporal | deblur | temporal+deblur")
    p.add_argument("--out", required=True, help="output .mp4 or PNG folder (PNG keeps the noise exactly)")
    p.add_argument("--seed", type=int, default=0, help="seeds masks, kernels and noise")
    p.add_argument("--noise", default="0.01", metavar="TYPE[:LEVEL]",
                   help=NOISE_HELP + " (default: Gaussian sigma 0.01; 0 = none)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="OPTION=VALUE",
                   help="task option, e.g. --set factor=2, --set ratio=0.7, --set k=5")
    p.add_argument("--overwrite", action="store_true")
    add_read_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.config import TaskConfig, parse_override
    from vidplug.simulate import degrade_video

    # typed and checked like a config's task section (a bad --noise included) before anything is read
    task = TaskConfig(name=args.task, noise=args.noise, seed=args.seed,
                      options=dict(parse_override(o) for o in args.options))
    written = degrade_video(args.input, args.out, task.name, seed=task.seed, noise=task.noise_model,
                            read=read_kwargs(args), overwrite=args.overwrite, **task.options)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
