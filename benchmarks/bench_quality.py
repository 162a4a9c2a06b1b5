"""Quality benchmark: bicubic vs per-frame DMPlug vs full vidplug (SR x4, simulated) on the bundled clip and, when
present, on a DAVIS sequence -- the comparison `make demo` prints, recorded with device and commit.

    python -m benchmarks.bench_quality [--prior tiny] [--davis ../shared/data/davis-sample] [--frames 8]
        [--size 64x128] [--set solver.iters=40 ...] --out DIR [--no-append]

Targets (issue "A small prior of our own"): the full method beats bicubic on PSNR and on warping error, and beats
per-frame DMPlug on warping error. Each is reported as met / not met; nothing is chosen by the ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import append_results, env_line, environment, parse_size
from vidplug.demo import DEMO_FRAMES, DEMO_SIZE, compare_methods, demo_config, sample_clip
from vidplug.io.atomic import atomic_write_json
from vidplug.models import Models
from vidplug.runtime import resolve_device


def targets(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    full, base, bic = rows["vidplug (full)"], rows["dmplug (per frame)"], rows["bicubic"]
    return {
        "full > bicubic PSNR": full["psnr"] > bic["psnr"],
        "full < bicubic WE": full["warping_error"] < bic["warping_error"],
        "full < per-frame DMPlug WE": full["warping_error"] < base["warping_error"],
    }


def sources(args: argparse.Namespace) -> dict[str, Path]:
    out = {"bundled clip (bikes)": sample_clip()}
    if args.davis:
        from vidplug.io import davis_sequence_dir, davis_sequences

        root = Path(args.davis)
        if root.is_dir():
            seq = davis_sequences(root, "val")[0]
            out[f"DAVIS {seq}"] = davis_sequence_dir(root, seq)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = demo_config([f"prior.name={args.prior}", *args.overrides])
    env = environment(resolve_device(cfg.device))
    models = Models(cfg, resolve_device(cfg.device))
    read = {"max_frames": args.frames, "size": args.size}
    results = {}
    for label, path in sources(args).items():
        cmp = compare_methods(path, Path(args.out) / label.split()[0].lower(), cfg, read, models=models,
                              progress=not args.no_progress)
        results[label] = {"rows": cmp["rows"], "table": cmp["table"], "targets": targets(cmp["rows"]),
                          "notes": sorted({n for r in cmp["reports"].values() for n in r["notes"]}),
                          "flow_model": cmp["reports"]["vidplug (full)"]["metrics"]["flow_model"]}
    summary = {"env": env, "settings": {"prior": args.prior, "frames": args.frames, "size": args.size,
                                        "overrides": args.overrides}, "results": results}
    atomic_write_json(Path(args.out) / "bench_quality.json", summary)
    return summary


def markdown(summary: dict[str, Any]) -> str:
    s = summary["settings"]
    lines = [f"## bench_quality: SR x4, prior `{s['prior']}`, {s['frames']} frames at {s['size'][0]}x{s['size'][1]}"
             f"{' ' + ' '.join(s['overrides']) if s['overrides'] else ''}", "", env_line(summary["env"])]
    for label, r in summary["results"].items():
        met = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items())
        lines += ["", f"**{label}** (flow: {r['flow_model']})", "", r["table"], "", f"Targets: {met}."]
        lines += [f"Note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", default="tiny")
    p.add_argument("--davis", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "davis-sample"),
                   help="DAVIS root (skipped when absent)")
    p.add_argument("--frames", type=int, default=DEMO_FRAMES)
    p.add_argument("--size", type=parse_size, default=DEMO_SIZE, help="HxW the clips are resized to")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="benchmarks/results/quality")
    p.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary = run(args)
    text = markdown(summary)
    print(text)
    print(json.dumps({k: v["targets"] for k, v in summary["results"].items()}))
    if not args.no_append:
        append_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
