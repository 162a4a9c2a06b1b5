"""``vidplug restore``: restore a video (or, with --simulate, degrade a clean one, restore it and score it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidplug.cli.common import add_config_args, add_read_args, config_from_args


def register(sub) -> None:
    p = sub.add_parser("restore", help="restore a degraded video (DMPlug + temporal consistency)",
                       description="Restore INPUT and write OUT (.mp4 or a PNG folder).")
    p.add_argument("input", help="video file or image folder (the observation; the clean video with --simulate)")
    p.add_argument("--out", required=True, help="output .mp4/.mkv or PNG folder")
    p.add_argument("--simulate", action="store_true", help="INPUT is clean: degrade it, restore, report metrics")
    p.add_argument("--mask", default=None, help="inpainting mask video/folder (white = observed), real observations")
    p.add_argument("--report", default=None, help="write a JSON report here, and beside it the same name .html: "
                   "a self-contained page with synchronised videos, charts and provenance (open it, or `vidplug view`)")
    p.add_argument("--no-html", action="store_true", help="with --report: skip the HTML page and its videos")
    p.add_argument("--side-by-side", default=None, help="also write observation | restored (| truth) here")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its chunk checkpoints")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g = p.add_argument_group("audio (colour, timestamps and rotation of INPUT are always kept)")
    g.add_argument("--audio", default="auto", choices=["auto", "copy", "aac", "none"],
                   help="INPUT's audio in OUT: auto = copied when OUT's container can hold it, else re-encoded as AAC; "
                        "copy = copied or stop before any work; aac = re-encoded; none = dropped (default: auto)")
    g.add_argument("--no-audio", dest="audio", action="store_const", const="none", help="same as --audio none")
    add_config_args(p)
    add_read_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.pipeline import restore_video

    cfg = config_from_args(args)
    result = restore_video(
        args.input, args.out, cfg, simulate=args.simulate, mask=args.mask,
        report_path=args.report, side_by_side=args.side_by_side, overwrite=args.overwrite,
        progress=not args.no_progress, resume=args.resume, audio=args.audio,
        html_report=Path(args.report).with_suffix(".html") if args.report and not args.no_html else None,
    )
    r = result.report
    if not r:  # a non-zero rank of a multi-process run: rank 0 writes and reports
        return 0
    line = f"restored {r['frames']} frames -> {result.out} in {r['wall_time_s']:.1f} s"
    if "metrics" in r:
        m = {k: r["metrics"][k] for k in ("psnr", "ssim", "lpips", "warping_error")}
        line += " | " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()})
    print(line)
    if args.report and not args.no_html:
        print(f"report page: {Path(args.report).with_suffix('.html')} (open it in a browser, or: vidplug view "
              f"{Path(args.report).parent})")
    return 0
