"""Page parts built from restore reports (the dicts :func:`vidplug.pipeline.restore_video` returns and writes as
JSON): the metrics table, per-frame charts, solver curves, provenance and warnings. Used by every report page."""

from __future__ import annotations

from typing import Any

import yaml

from vidplug.report_html.page import Chart, Column, Marker, Row, Series, Table

# key in a report's "metrics" (or the report itself) -> column; the same titles, formats and ranking as report.md
METRIC_COLUMNS: dict[str, Column] = {
    "psnr": Column("PSNR (dB)", 2, "max"),
    "ssim": Column("SSIM", 4, "max"),
    "lpips": Column("LPIPS", 4, "min"),
    "warping_error": Column("WE (x1e-2)", 4, "min", 100.0),
    "wall_time_s": Column("time (s)", 1),  # not ranked: a baseline without optimisation would always "win"
}
WE_NOTE = "WE: warping error, mean squared error on [0, 1] frames x 100 (flow on the ground truth)."


def metric_row(report: dict[str, Any]) -> dict[str, Any]:
    """The table values of one restore report (metrics absent for real, unsimulated observations)."""
    m = report.get("metrics") or {}
    return {**{k: m.get(k) for k in ("psnr", "ssim", "lpips", "warping_error")},
            "wall_time_s": report.get("wall_time_s")}


def metrics_table(title: str, rows: dict[str, dict[str, Any]], hrefs: dict[str, str] | None = None,
                  rank: bool = True, note: str = WE_NOTE) -> Table:
    """One row per entry of ``rows`` (label -> metric values as :func:`metric_row` gives)."""
    hrefs = hrefs or {}
    return Table(title, list(METRIC_COLUMNS.values()),
                 [Row(label, [r.get(k) for k in METRIC_COLUMNS], hrefs.get(label)) for label, r in rows.items()],
                 rank="columns" if rank else "none", note=note)


def _per_frame(report: dict[str, Any], key: str) -> list[float | None]:
    return list(((report.get("metrics") or {}).get("per_frame") or {}).get(key) or [])


def per_frame_charts(runs: dict[str, dict[str, Any]], seek: bool) -> list[Chart]:
    """Per-frame PSNR and per-pair warping error, one series per run (label -> restore report)."""
    out = []
    for key, title, ylabel, xlabel in (("psnr", "PSNR per frame", "PSNR (dB)", "frame"),
                                       ("warping_error", "Warping error per frame pair (t, t+1)",
                                        "WE (x1e-2)", "frame")):
        scale = 100.0 if key == "warping_error" else 1.0
        series = [Series(label, [None if v is None else v * scale for v in _per_frame(r, key)])
                  for label, r in runs.items()]
        series = [s for s in series if any(v is not None for v in s.values)]
        if series:
            out.append(Chart(title, xlabel, ylabel, series, seek=seek,
                             note="click to seek every video to that frame" if seek else ""))
    return out


def _chunks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Solver summaries of a report's chunks (sub-chunks flattened), in order."""
    out = []
    for c in report.get("chunks", []):
        out.extend(c.get("sub_chunks") or [c])
    return out


def solver_charts(runs: dict[str, dict[str, Any]], first_chunk_only: bool) -> list[Chart]:
    """The solver's total loss per iteration and, in simulations, the ORACLE PSNR curve with the returned iterate
    (the ES-WMV stop when early stopping chose it) marked. One series per chunk of a single run, or per run
    (its first chunk) when ``first_chunk_only``."""
    loss, oracle, markers = [], [], []
    for label, report in runs.items():
        chunks = _chunks(report)[:1] if first_chunk_only else _chunks(report)
        for i, c in enumerate(chunks):
            name = label if first_chunk_only else f"chunk {i}"
            hist = (c.get("loss_history") or {}).get("total")
            if hist:
                loss.append(Series(name, hist))
            if c.get("oracle_psnr"):
                oracle.append(Series(name, c["oracle_psnr"]))
                if c.get("chosen_iteration") is not None and len(runs) == 1:  # one run: mark every chunk
                    it, why = c["chosen_iteration"], c.get("stopped_by")
                    what = "ES-WMV stop" if why == "es-wmv" else "returned iterate"
                    where = f"chunk {i}: " if len(chunks) > 1 else ""
                    markers.append(Marker(it, f"{where}{what} (iteration {it})"))
    charts = []
    if loss:
        charts.append(Chart("Solver loss" + (" (first chunk)" if first_chunk_only else ""), "iteration",
                            "total loss", loss, logy=True))
    if oracle:
        charts.append(Chart("ORACLE: PSNR of the iterate vs ground truth", "iteration", "PSNR (dB)", oracle,
                            markers=markers, note="ORACLE curve: recorded for analysis only, never used to "
                                                  "choose an iterate (ES-WMV looks at the iterates alone)."))
    return charts


def provenance(report: dict[str, Any]) -> dict[str, str]:
    """What a restore report says about how it was made: input, task, prior, flow, device, versions, time."""
    m = report.get("metrics") or {}
    items = {
        "input": report.get("input"), "output": report.get("output"), "task": report.get("task"),
        "method": report.get("method"), "prior": report.get("prior") or "none",
        "flow model": m.get("flow_model") or report.get("flow_model"), "device": report.get("device"),
        "frames": report.get("frames"), "fps": report.get("fps"),
        "wall time": None if report.get("wall_time_s") is None else f"{report['wall_time_s']:.1f} s",
        "processes": report.get("processes"),
        "chosen iterations": report.get("chosen_iterations") if any(
            i is not None for i in report.get("chosen_iterations") or []) else None,
        "versions": ", ".join(f"{k} {v}" for k, v in (report.get("versions") or {}).items() if v),
    }
    return {k: str(v) for k, v in items.items() if v not in (None, "", [])}


def warnings_of(reports: list[dict[str, Any]]) -> list[str]:
    """Every note and metric caveat of ``reports`` (e.g. "CLIP weights absent: semantic term off"), once each."""
    out: list[str] = []
    for r in reports:
        for note in [*(r.get("notes") or []), (r.get("metrics") or {}).get("lpips_note")]:
            if note and note not in out:
                out.append(note)
    return out


def config_text(config: dict[str, Any] | None) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False) if config else ""


def ranked_rows_table(title: str, values: dict[str, dict[str, float | None]], column: Column,
                      hrefs: dict[str, str] | None = None, note: str = "") -> Table:
    """A table of one metric (``column``) with rows ``values`` (row -> column name -> value) ranked along each
    row, e.g. sequences x methods."""
    names = list(dict.fromkeys(k for row in values.values() for k in row))
    cols = [Column(n, column.decimals, column.better, column.scale) for n in names]
    rows = [Row(label, [row.get(n) for n in names], (hrefs or {}).get(label)) for label, row in values.items()]
    return Table(title, cols, rows, rank="rows", note=note)
