"""Pages of restore runs: one run (:func:`write_restore_html`, beside ``restore --report``) and several methods
on the same clip (:func:`write_comparison_html`: the demo, one sequence of an ablation)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vidplug.report_html.page import ReportPage, Video, write_html_report
from vidplug.report_html.sections import (
    config_text,
    metric_row,
    metrics_table,
    per_frame_charts,
    provenance,
    solver_charts,
    warnings_of,
)

LABELS = {"observation": "observation", "ground_truth": "ground truth"}


def media_dir_for(html_path: str | Path) -> Path:
    """Where the videos of the page ``html_path`` go: ``<stem>_media/`` beside it."""
    html_path = Path(html_path)
    return html_path.with_name(f"{html_path.stem}_media")


def media_files(html_path: str | Path) -> dict[str, Path]:
    """The report videos written for the page ``html_path`` (observation / restored / ground_truth -> file)."""
    folder = media_dir_for(html_path)
    return {name: folder / f"{name}.mp4" for name in ("observation", "restored", "ground_truth")
            if (folder / f"{name}.mp4").is_file()}


def _rel(target: str | Path, page: Path) -> str:
    return Path(os.path.relpath(Path(target), page.parent)).as_posix()


def write_restore_html(path: str | Path, report: dict[str, Any], media: dict[str, Path],
                       links: list[tuple[str, str]] | None = None, title: str | None = None) -> Path:
    """The page of one restore run: its videos (``media``: observation / restored / ground_truth -> file), metrics,
    per-frame charts, solver curves, provenance and warnings."""
    path = Path(path)
    method = report.get("method", "restored")
    label = f"restored ({method})"
    videos = [Video(label if name == "restored" else LABELS[name], _rel(media[name], path))
              for name in ("observation", "restored", "ground_truth") if name in media]
    runs = {label: report}
    tables = [metrics_table("Metrics", {label: metric_row(report)}, rank=False)] if report.get("metrics") else []
    page = ReportPage(
        title=title or f"vidplug restore: {report.get('task')} with {method}",
        subtitle=f"{report.get('input')} -> {report.get('output')}",
        fps=float(report.get("fps") or 25.0), frames=int(report.get("frames") or 0), videos=videos,
        charts=per_frame_charts(runs, seek=True) + solver_charts(runs, first_chunk_only=False),
        tables=tables, provenance=provenance(report), config_text=config_text(report.get("config")),
        warnings=warnings_of([report]), links=links or [],
    )
    return write_html_report(path, page)


def write_comparison_html(path: str | Path, title: str, runs: dict[str, dict[str, Any]],
                          media: dict[str, dict[str, Path]], *, subtitle: str = "",
                          links: list[tuple[str, str]] | None = None, extra: dict[str, str] | None = None) -> Path:
    """Several methods on one clip: the observation and ground truth (from the first run's media), each method's
    restoration, a ranked metrics table, per-frame charts (click seeks) and each method's first-chunk solver curves.

    Args:
        runs: method label -> its restore report (same clip, same frames).
        media: method label -> its report videos (observation / restored / ground_truth -> file).
        extra: more provenance lines (e.g. preprocessing).
    """
    path = Path(path)
    first = next(iter(media.values()))
    videos = [Video("observation", _rel(first["observation"], path))]
    videos += [Video(label, _rel(m["restored"], path)) for label, m in media.items()]
    if "ground_truth" in first:
        videos.append(Video("ground truth", _rel(first["ground_truth"], path)))
    report = next(iter(runs.values()))
    prov = {k: v for k, v in provenance(report).items() if k not in ("method", "output", "wall time",
                                                                     "chosen iterations")}
    prov.update({f"method: {label}": f"{r.get('method')}, {r.get('wall_time_s', 0):.1f} s"
                 for label, r in runs.items()})
    page = ReportPage(
        title=title, subtitle=subtitle, fps=float(report.get("fps") or 25.0), frames=int(report.get("frames") or 0),
        videos=videos, charts=per_frame_charts(runs, seek=True) + solver_charts(runs, first_chunk_only=True),
        tables=[metrics_table("Metrics (best bold, second underlined)",
                              {label: metric_row(r) for label, r in runs.items()})],
        provenance={**prov, **(extra or {})}, config_text=config_text(report.get("config")),
        warnings=warnings_of(list(runs.values())), links=links or [],
    )
    return write_html_report(path, page)
