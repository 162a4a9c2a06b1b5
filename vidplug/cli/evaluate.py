"""``vidplug eval``: degrade a dataset's sequences, restore them, score them; resumable, with a report.

The dataset arguments defined here (:func:`add_davis_args`) are shared with ``vidplug ablate``."""

from __future__ import annotations

import argparse

from vidplug.cli.common import add_config_args, add_read_args, comma_names, config_from_args

DEFAULT_SIZE = 256  # the ADM priors' resolution, as zero-shot video papers evaluate


def add_davis_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset", "--davis", dest="dataset", required=True, metavar="ROOT",
                   help="DAVIS 2017 root (JPEGImages/480p, ImageSets/2017), a folder of sequence folders of frames "
                        "(REDS train_sharp/, Vid4, UDM10, SPMCS) or a folder of videos")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder (rerun the same command to resume)")
    g.add_argument("--sequences", type=comma_names(example="bear,blackswan"), default=None,
                   metavar="A,B", help="sequences to run (default: --split)")
    g.add_argument("--split", default=None, metavar="FILE",
                   help="file listing the sequences, one a line (e.g. REDS4, Vid4); for DAVIS also a split name of "
                        "ImageSets/2017 or 'all' (DAVIS default: val; otherwise every sequence)")
    g.add_argument("--resolution", default="480p", help="DAVIS: JPEGImages/<resolution> (default: 480p)")
    g.add_argument("--overwrite", action="store_true", help="discard earlier results in DIR and start over")
    g.add_argument("--no-videos", action="store_true", help="skip the side-by-side videos")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate on DAVIS, REDS, Vid4, ... (simulated degradation, PSNR/SSIM/LPIPS/warping error)",
        description="For each sequence of --dataset: take the first --max-frames frames, center-crop and resize to "
                    "--size (default 256; 'native' keeps the frames as they are), degrade with the task's seeded "
                    "operator, restore, score. Writes DIR/results.json, results.csv, report.md, report.html, plots/ "
                    "and videos/. Finished sequences are kept: rerun to resume.")
    add_davis_args(p)
    add_config_args(p)
    add_read_args(p, {"size": DEFAULT_SIZE})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.evaluation import evaluate_davis

    cfg = config_from_args(args)
    out = evaluate_davis(args.dataset, args.out, cfg, sequences=args.sequences, split=args.split,
                         resolution=args.resolution, overwrite=args.overwrite,
                         progress=not args.no_progress, videos=not args.no_videos)
    if not out:  # a non-zero rank of a multi-process run
        return 0
    m = out["mean"]
    we = "n/a" if m["warping_error"] is None else f"{m['warping_error'] * 100:.4f}"
    lp = "n/a" if m["lpips"] is None else f"{m['lpips']:.4f}"
    print(f"{out['label']} on {len(out['sequences'])} sequence(s) ({m['frames']} frames, {out['wall_time_s']:.1f} s): "
          f"PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, LPIPS {lp}, WE(x1e-2) {we} -> {args.out}/report.md, "
          f"{args.out}/report.html (open it, or: vidplug view {args.out})")
    return 0
