"""Quality benchmark: the full method against per-frame DMPlug and the classical baselines on real clips, for SR x4,
random inpainting (50%), temporal averaging (k=7) and temporal+deblur, all simulated from clean frames.

    python -m benchmarks.bench_quality [--prior tiny] [--tasks sr4,inpaint,temporal,temporal+deblur]
        [--clips bikes,bigbuckbunny,bmx-trees] [--frames 8] [--start 0] [--stride 1] [--size 128x128] [--set solver.iters=20 ...]
        --out DIR

Settings are the prior's recommended ones (configs/priors/<prior>.yaml, as `vidplug restore --prior` gets them)
plus any --set. Goals (issue 18), each printed as met / not met per clip and task: the full method ranks first on
PSNR and on SSIM against the task's classical baselines and per-frame DMPlug (the flow-coupled least-squares row,
the full method's start without the prior, is shown as an ablation, outside the goals); its warping error is at
most half of per-frame DMPlug's; it takes at most 5 s per frame. The returned iterate is ES-WMV's or the last one:
nothing is chosen by the ground truth. With `solver.project_steps` the PSNR before the measurement projection is also
reported (ORACLE: it needs the ground truth, decides nothing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import add_report_args, append_results, bench_main, env_line, environment, parse_size
from vidplug.cli.common import comma_names
from vidplug.config import load_config, merge
from vidplug.config.bundled import bundled
from vidplug.errors import VidplugError
from vidplug.evaluation.report import Column, ranked_table
from vidplug.io.atomic import atomic_write_json
from vidplug.methods.classical import TASK_BASELINES
from vidplug.models import Models
from vidplug.pipeline import restore_video
from vidplug.runtime import resolve_device

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = {"bikes": "videos/bikes.mp4", "bigbuckbunny": "videos/bigbuckbunny.mp4",  # under --data
         "bmx-trees": "davis-sample/JPEGImages/480p/bmx-trees"}
FULL, PER_FRAME = "vidplug (full)", "dmplug (per frame)"
# the full method's own start without the prior (multi-frame least squares): an ablation row, not a goal's baseline
FLOW_LS = "flow-coupled least squares (no prior)"
COLUMNS = (Column("psnr", "PSNR (dB)", ".2f", "max"), Column("ssim", "SSIM", ".4f", "max"),
           Column("warping_error", "WE (x1e-2)", ".4f", "min", 100.0), Column("s_per_frame", "s/frame", ".1f"))
MAX_S_PER_FRAME = 5.0
CONSISTENCY_KEYS = ("semantic_weight", "pixel_weight", "pixel_in_solve", "flow_model", "flow_refresh_every",
                    "dis_full_resolution", "dis_smoothing", "fusion_weight", "fusion_weight_cv", "motion_boundaries",
                    "motion_boundaries_cv", "fusion_rounds", "fusion_radius", "fusion_flows_from")


def goals(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Issue 18's goals for one clip and task, from its table rows."""
    full, base = rows[FULL], rows[PER_FRAME]
    others = [r for name, r in rows.items() if name not in (FULL, FLOW_LS)]
    return {
        "full first on PSNR": all(full["psnr"] > r["psnr"] for r in others),
        "full first on SSIM": all(full["ssim"] > r["ssim"] for r in others),
        "full WE <= half of per-frame DMPlug's": full["warping_error"] <= 0.5 * base["warping_error"],
        f"full <= {MAX_S_PER_FRAME:g} s/frame": full["s_per_frame"] <= MAX_S_PER_FRAME,
    }


def methods(task: str) -> dict[str, dict[str, Any]]:
    """Table rows of ``task``: label -> config change (its baselines, per-frame DMPlug, the full method)."""
    rows: dict[str, dict[str, Any]] = {label: {"method": m} for label, m in TASK_BASELINES[task].items()}
    rows[FLOW_LS] = {"method": "flow-least-squares"}
    rows[PER_FRAME] = {"consistency": {"semantic_weight": 0.0, "pixel_weight": 0.0}}
    rows[FULL] = {}
    return rows


def task_config(task: str, prior: str, overrides: list[str]):
    """``configs/tasks/<task>.yaml`` with ``prior`` (and its recommended settings) and the --set overrides."""
    return load_config(bundled(f"tasks/{task}.yaml"), overrides, flags={"prior.name": prior})


def run_task(source: Path, task: str, args: argparse.Namespace, out_dir: Path, models: dict) -> dict[str, Any]:
    """Every method of ``task`` on one clip: rows (method -> metrics, s/frame) and the full method's notes."""
    cfg = task_config(task, args.prior, args.overrides)
    read = {"start": args.start, "stride": args.stride, "max_frames": args.frames, "size": args.size}
    rows, notes = {}, set()
    for name, change in methods(task).items():
        run_cfg = merge(cfg, change)
        key = run_cfg.method
        if key not in models:  # built from the task's full config: a row with the terms off shares the networks,
            # and the full method gets its CLIP and flow models whatever the rows' order
            models[key] = Models(merge(cfg, {"method": key}), resolve_device(run_cfg.device))
        res = restore_video(source, out_dir / f"{name.split()[0].lower()}.mp4", run_cfg, simulate=True, read=read,
                            overwrite=True, models=models[key], progress=not args.quiet)
        rep = res.report
        rows[name] = {**{k: rep["metrics"][k] for k in ("psnr", "ssim", "warping_error")},
                      "s_per_frame": rep["wall_time_s"] / rep["frames"]}
        unprojected = [c.get("oracle_psnr_unprojected") for c in rep.get("chunks", [])]
        if unprojected and all(u is not None for u in unprojected):
            rows[name]["psnr_unprojected_oracle"] = sum(unprojected) / len(unprojected)
        if name == FULL:
            notes |= set(rep["notes"])
            rows[name]["flow_model"] = rep["metrics"]["flow_model"]
            # which frames each chunk's fused start took its first flows from (consistency.fusion_flows_from=auto)
            rows[name]["fusion_flows_from"] = [c["fusion"]["flows_from"] for c in rep.get("chunks", [])
                                               if "flows_from" in c.get("fusion", {})]
            # the weight and coupling mask each chunk's held-out pixels chose (consistency.fusion_weight_cv,
            # motion_boundaries_cv)
            chosen = [c["fusion"] for c in rep.get("chunks", []) if "weight_cv" in c.get("fusion", {})]
            rows[name]["fusion_weight_chosen"] = [f["weight"] for f in chosen]
            rows[name]["motion_boundaries_chosen"] = [f["motion_boundaries"] for f in chosen]
    cons = cfg.consistency  # the full method's terms, after the prior's per-task settings
    return {"rows": rows, "goals": goals(rows), "notes": sorted(notes),
            "consistency": {k: getattr(cons, k) for k in CONSISTENCY_KEYS}}


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_run_args` that decide what a run measures, as its summary stores them."""
    return {"prior": args.prior, "frames": args.frames, "stride": args.stride, "size": list(args.size),
            "overrides": list(args.overrides)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = task_config(args.tasks[0], args.prior, args.overrides)
    env = environment(resolve_device(cfg.device))
    results: dict[str, dict[str, Any]] = {}
    models: dict[str, Models] = {}
    found = {clip: Path(args.data) / CLIPS[clip] for clip in args.clips if (Path(args.data) / CLIPS[clip]).exists()}
    if not found:
        raise VidplugError(f"none of the clips {', '.join(args.clips)} is under {args.data}; pass --data DIR")
    for clip, path in found.items():
        for task in args.tasks:
            out = run_task(path, task, args, Path(args.out) / clip / task, models)
            results.setdefault(clip, {})[task] = out
            if not args.quiet:
                print(f"{clip} {task}: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}"
                                                     for k, v in out["goals"].items()), flush=True)
    summary = {"env": env, "settings": {**run_settings(args), "start": args.start, "solver": dict(vars(cfg.solver)),
                                        "border_pad": cfg.prior.border_pad}, "results": results}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out) / "bench_quality.json", summary)
    text = markdown(summary, args.note)
    print(text)
    if not args.no_append:
        append_results(text)
    return summary


def markdown(summary: dict[str, Any], note: str | None = None) -> str:
    s = summary["settings"]
    sv = s["solver"]
    start = f" from frame {s['start']}" if s.get("start") else ""
    start += f" with stride {s['stride']}" if s.get("stride", 1) > 1 else ""
    lines = [f"## bench_quality: prior `{s['prior']}`, {s['frames']} frames{start} at {s['size'][0]}x{s['size'][1]}",
             "", env_line(summary["env"]), "",
             f"Settings: solver {sv['optimizer']} lr {sv['lr']}, K={sv['num_steps']}, iters {sv['iters']}, init "
             f"{sv['init']}, init_refine_steps {sv['init_refine_steps']}, project_steps {sv['project_steps']} "
             f"(damping {sv['project_damping']}), ES-WMV {sv['early_stop']}, border_pad {s['border_pad']}"
             + (f"; overrides: {' '.join(s['overrides'])}" if s["overrides"] else "")]
    for clip, tasks in summary["results"].items():
        for task, r in tasks.items():
            full = r["rows"][FULL]
            met = "; ".join(f"{k}: {'met' if v else '**NOT met**'}" for k, v in r["goals"].items())
            terms = ", ".join(f"{k} {v}" for k, v in r.get("consistency", {}).items())
            lines += ["", f"**{clip}, {task}** (warping-error flow: {full.get('flow_model')}; full method: {terms})", "",
                      ranked_table(r["rows"], columns=COLUMNS), "", f"Goals: {met}."]
            if FLOW_LS in r["rows"]:
                ablation = r["rows"][FLOW_LS]
                lines.append(f"What the prior adds over its own start ({FLOW_LS}, not one of the goals' baselines): "
                             f"{full['psnr'] - ablation['psnr']:+.2f} dB, {full['ssim'] - ablation['ssim']:+.4f} SSIM.")
            if full.get("fusion_flows_from"):
                lines.append(f"The full method's fused start took its first flows from the "
                             f"{' / '.join(full['fusion_flows_from'])} (consistency.fusion_flows_from, per chunk).")
            if full.get("fusion_weight_chosen"):
                masks = ["with" if m else "without" for m in full.get("motion_boundaries_chosen", [])]
                lines.append(f"Fusion weight chosen by held-out observed pixels: "
                             f"{' / '.join(map(str, full['fusion_weight_chosen']))} (consistency.fusion_weight_cv, "
                             f"per chunk)" + (f"; coupling mask {' / '.join(masks)} motion boundaries "
                                              f"(consistency.motion_boundaries_cv)." if masks else "."))
            if "psnr_unprojected_oracle" in full:
                lines.append(f"Full method before the measurement projection (ORACLE, decides nothing): "
                             f"{full['psnr_unprojected_oracle']:.2f} dB.")
            lines += [f"Note: {n}" for n in r["notes"]]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def add_run_args(p: argparse.ArgumentParser) -> None:
    """What a quality run restores and with which settings: --prior, --tasks, --data, --frames, --stride, --size,
    --set (shared with benchmarks/bench_standing.py)."""
    p.add_argument("--prior", default="tiny")
    p.add_argument("--tasks", type=comma_names(TASK_BASELINES), default=list(TASK_BASELINES))
    p.add_argument("--data", default=str(DATA), help="folder holding the clips (default: ../shared/data)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--stride", type=int, default=1,
                   help="keep every n-th frame: faster motion between the kept frames (a harder test of the flows)")
    p.add_argument("--size", type=parse_size, default=(128, 128), help="HxW the clips are resized to")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_quality", description=__doc__.split("\n\n")[0])
    add_run_args(p)
    p.add_argument("--clips", type=comma_names(CLIPS), default=list(CLIPS),
                   help="clips from ../shared/data (absent ones are skipped)")
    p.add_argument("--start", type=int, default=0,
                   help="first frame of each clip, 0-based (other segments of the same clips: see RESULTS.md)")
    add_report_args(p, "folder for the restored clips and bench_quality.json")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_quality", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
