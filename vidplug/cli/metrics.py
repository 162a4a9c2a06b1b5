"""``vidplug metrics RESTORED REFERENCE``: PSNR, SSIM, LPIPS and warping error of a restored video."""

from __future__ import annotations

import argparse
import json

from vidplug.cli.common import add_read_args, read_kwargs


def register(sub) -> None:
    p = sub.add_parser("metrics", help="score a restored video against a reference")
    p.add_argument("restored", help="restored video file or PNG folder")
    p.add_argument("reference", help="ground-truth video file or PNG folder")
    p.add_argument("--json", action="store_true", help="print one JSON object (psnr, ssim, lpips, warping_error, ...)")
    p.add_argument("--flow", default="auto", help="flow model for the warping error: auto | raft | dis (| farneback)")
    p.add_argument("--ssim", default="rgb", choices=["rgb", "y"], help="SSIM/PSNR on RGB (default) or the Y channel")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--device", default="auto")
    add_read_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.consistency.flow import load_flow_model
    from vidplug.io import read_video
    from vidplug.metrics import compute_metrics
    from vidplug.runtime import resolve_device

    device = resolve_device(args.device)
    restored = read_video(args.restored, **read_kwargs(args)).frames
    reference = read_video(args.reference, **read_kwargs(args)).frames
    flow = load_flow_model(args.flow, device=device)
    m = compute_metrics(restored.to(device), reference.to(device), flow_model=flow, lpips=not args.no_lpips,
                        ssim_mode=args.ssim)
    if args.json:
        print(json.dumps(m, default=float))
        return 0
    lp = "n/a" if m["lpips"] is None else f"{m['lpips']:.4f}"
    print(f"frames {m['frames']}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}  LPIPS {lp}  "
          f"WE {m['warping_error'] * 100:.4f} x1e-2 (flow: {m['flow_model']})")
    if m.get("lpips_note"):
        print(f"LPIPS unavailable: {m['lpips_note']}")
    return 0
