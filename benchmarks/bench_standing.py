"""Where issue 18's quality goals stand: bench_quality on each segment of a list (by default the nine standard
segments, all four tasks), then one table of every segment x task cell with the goals it misses, and the count of
cells that meet every quality goal.

    python -m benchmarks.bench_standing --out DIR [--segments standard | bikes:0,bmx-trees:40,...]
        [--tasks sr4,inpaint,temporal,temporal+deblur] [--frames 8] [--size 128x128] [--set KEY=VALUE ...]

The quality goals are bench_quality's (first on PSNR and on SSIM against the task's classical baselines and per-frame
DMPlug, warping error at most half of per-frame DMPlug's); the speed goal is left out, since it is judged on
`make demo` with the cores to itself. Resumable and shareable: a segment whose ``DIR/<clip>-<start>/
bench_quality.json`` exists is read instead of run, so two processes can each take half of the segments (same
``--out``, one thread each) and a last call with every segment writes the table. A folder that holds a run with other
settings is an error, never overwritten. The standard segments are the ones the tiny prior was tuned on (bikes) and
held out on (bmx-trees, bigbuckbunny); benchmarks/RESULTS.md has their history.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import bench_quality as bq
from benchmarks.common import add_report_args, append_results, bench_main, env_line
from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_write_json

STANDARD = (("bikes", 0), ("bikes", 120), ("bikes", 200), ("bmx-trees", 0), ("bmx-trees", 40), ("bmx-trees", 70),
            ("bigbuckbunny", 0), ("bigbuckbunny", 60), ("bigbuckbunny", 100))


def parse_segments(text: str) -> list[tuple[str, int]]:
    """``standard`` or ``clip:start,clip:start,...`` -> [(clip, start), ...]."""
    if text == "standard":
        return list(STANDARD)
    segments = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        clip, _, start = item.partition(":")
        if clip not in bq.CLIPS or not start.isdigit():
            raise VidplugError(f"--segments takes 'standard' or clip:start pairs (clips: {', '.join(bq.CLIPS)}; start a "
                               f"frame number), got '{item}'")
        segments.append((clip, int(start)))
    if not segments:
        raise VidplugError("--segments is empty; pass 'standard' or clip:start pairs, e.g. bikes:0,bmx-trees:40")
    return segments


def segment_run(args: argparse.Namespace, clip: str, start: int) -> dict[str, Any]:
    """bench_quality's summary for one segment: read from its folder when there, else run (and stored there)."""
    folder = Path(args.out) / f"{clip}-{start}"
    stored = folder / "bench_quality.json"
    want = bq.run_settings(args) | {"start": start}  # a stored run must match these
    if stored.exists():
        try:
            summary = json.loads(stored.read_text())
            have = {k: summary["settings"][k] for k in want}
            tasks = set(summary["results"][clip])
        except (ValueError, KeyError, TypeError):
            raise VidplugError(f"{stored} is not a bench_quality summary of {clip}; remove it or pick another "
                               f"--out") from None
        if have != want or not set(args.tasks) <= tasks:
            raise VidplugError(f"{stored} holds a run with other settings ({have}, tasks {sorted(tasks)}); pick another "
                               f"--out or pass the same settings")
        return summary
    run_args = argparse.Namespace(**vars(args), clips=[clip], start=start)
    run_args.out, run_args.no_append, run_args.note = str(folder), True, None
    return bq.run(run_args)


def cell(name: str, task: str, out: dict[str, Any]) -> dict[str, Any]:
    """One row of the standing table: the full method, the best of the goals' other rows, the warping-error ratio and
    the quality goals missed."""
    rows = out["rows"]
    full, per_frame = rows[bq.FULL], rows[bq.PER_FRAME]
    others = {k: v for k, v in rows.items() if k not in (bq.FULL, bq.FLOW_LS)}
    by_psnr = max(others, key=lambda k: others[k]["psnr"])
    by_ssim = max(others, key=lambda k: others[k]["ssim"])
    best = f"{by_psnr} {others[by_psnr]['psnr']:.2f}"
    best += (f" / {others[by_psnr]['ssim']:.4f}" if by_psnr == by_ssim
             else f"; {by_ssim} SSIM {others[by_ssim]['ssim']:.4f}")
    missed = [k.removeprefix("full ") for k, ok in out["goals"].items() if not ok and "s/frame" not in k]
    return {"segment": name, "task": task, "psnr": full["psnr"], "ssim": full["ssim"], "best_other": best,
            "we": full["warping_error"], "we_per_frame": per_frame["warping_error"],
            "we_ratio": full["warping_error"] / max(per_frame["warping_error"], 1e-12), "missed": missed}


def markdown(cells: list[dict[str, Any]], env: dict[str, Any], settings: dict[str, Any], note: str | None,
             commits: list[str] | None = None) -> str:
    met = sum(not c["missed"] for c in cells)
    size = "x".join(map(str, settings["size"]))
    lines = [f"## bench_standing: prior `{settings['prior']}`, {len(cells)} segment x task cells, {settings['frames']} "
             f"frames at {size}", "", env_line(env), "",
             "| segment | task | full | best other (goal rows) | WE full / per-frame (x1e-2) | quality goals |",
             "|---|---|---|---|---|---|"]
    for c in cells:
        goals = "all met" if not c["missed"] else "**not met**: " + ", ".join(c["missed"])
        lines.append(f"| {c['segment']} | {c['task']} | {c['psnr']:.2f} / {c['ssim']:.4f} | {c['best_other']} | "
                     f"{100 * c['we']:.4f} / {100 * c['we_per_frame']:.4f} ({c['we_ratio']:.2f}x) | {goals} |")
    lines += ["", f"**{met} of {len(cells)} cells meet every quality goal** (the speed goal is judged on `make demo`)."]
    if commits and len(set(commits)) > 1:  # stored segments read from earlier runs: say which code measured what
        lines.append("Segments measured at different commits: " + ", ".join(
            f"{c['segment']} {commit}" for c, commit in zip(cells[::len(settings['tasks'])], commits, strict=True)) + ".")
    if settings["overrides"]:
        lines.append(f"Overrides: {' '.join(settings['overrides'])}.")
    if note:
        lines += ["", note]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cells, env, commits = [], None, []
    for clip, start in args.segments:
        summary = segment_run(args, clip, start)
        env = env or summary["env"]
        commits.append(summary["env"].get("commit", "?"))
        name = f"{clip} {start}-{start + (args.frames - 1) * args.stride}"
        cells += [cell(name, task, summary["results"][clip][task]) for task in args.tasks]
    settings = bq.run_settings(args) | {"tasks": list(args.tasks), "segments": [list(s) for s in args.segments]}
    result = {"env": env, "settings": settings, "cells": cells, "met": sum(not c["missed"] for c in cells),
              "commits": commits}
    atomic_write_json(Path(args.out) / "standing.json", result)
    text = markdown(cells, env, settings, args.note, commits)
    print(text)
    if not args.no_append:
        append_results(text)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_standing", description=__doc__.split("\n\n")[0])
    p.add_argument("--segments", type=parse_segments, default=list(STANDARD),
                   help="'standard' (the default: bikes 0/120/200, bmx-trees 0/40/70, bigbuckbunny 0/60/100) or "
                        "clip:start pairs")
    bq.add_run_args(p)
    add_report_args(p, "folder: one bench_quality folder per segment, and standing.json")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_standing", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
