"""report.html of the demo, a dataset evaluation and an ablation (built on :mod:`vidplug.report_html`).

An evaluation's page holds the per-sequence table; each row opens that sequence's own page
(``sequences/<seq>/report.html``, written by restore_video with its videos), so a long run never embeds every
sequence's videos in one page. An ablation's page holds the ranked method table and per-sequence tables whose rows
open ``pages/<seq>.html``: every method's restoration of that sequence side by side. A robustness study's page
(:func:`write_robustness_html`) tabulates every noise cell and draws the ORACLE PSNR curves with ES-WMV's stops.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidplug.report_html import (
    Chart,
    Column,
    Marker,
    ReportPage,
    Row,
    Series,
    Table,
    media_files,
    write_comparison_html,
    write_html_report,
    write_restore_html,
)
from vidplug.report_html.sections import (
    METRIC_COLUMNS,
    WE_NOTE,
    config_text,
    metric_row,
    metrics_table,
    per_frame_charts,
    ranked_rows_table,
    warnings_of,
)

SEQUENCE_PAGE = "report.html"  # sequences/<seq>/report.html of an evaluation (beside its report_media/)


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def write_demo_html(out_dir: str | Path, pages: dict[str, Path], reports: dict[str, dict[str, Any]],
                    subtitle: str) -> Path:
    """``out_dir/report.html``: every demo method on the sample clip (their own pages are linked)."""
    out_dir = Path(out_dir)
    links = [(f"{label}: its own page", _rel(page, out_dir)) for label, page in pages.items()]
    return write_comparison_html(out_dir / "report.html", "vidplug demo", reports,
                                 {label: media_files(page) for label, page in pages.items()},
                                 subtitle=subtitle, links=links)


def _eval_provenance(out: dict[str, Any]) -> dict[str, str]:
    items = {
        "method": out.get("label"), "task": out.get("task"), "prior": out.get("prior") or "none",
        "flow model": out.get("flow_model"), "device": out.get("device"), "preprocessing": out.get("preprocessing"),
        "dataset": out.get("dataset_root"), "layout": out.get("layout"), "split": out.get("split"),
        "restoration time": f"{out.get('wall_time_s', 0.0):.1f} s (summed over sequences)",
        "versions": ", ".join(f"{k} {v}" for k, v in (out.get("versions") or {}).items() if v),
    }
    return {k: str(v) for k, v in items.items() if v not in (None, "")}


def write_eval_html(out_dir: str | Path, out: dict[str, Any]) -> Path:
    """``out_dir/report.html`` of one evaluated method: per-sequence table (rows open the sequence pages), mean,
    per-frame charts of every sequence, provenance and every warning."""
    out_dir = Path(out_dir)
    seqs = out["sequences"]
    hrefs = {name: f"sequences/{name}/{SEQUENCE_PAGE}" for name in seqs
             if (out_dir / "sequences" / name / SEQUENCE_PAGE).is_file()}
    for name in hrefs:  # each sequence page (written by restore_video) gets a way back (no video is re-encoded)
        seq_page = out_dir / hrefs[name]
        write_restore_html(seq_page, seqs[name], media_files(seq_page), title=f"{out['label']} on {name} "
                           f"({out['task']})", links=[("back to the evaluation", "../../report.html")])
    rows = {name: metric_row(r) for name, r in seqs.items()}
    mean = out["mean"]
    rows["mean"] = {k: mean.get(k) for k in METRIC_COLUMNS}
    page = ReportPage(
        title=f"Evaluation on {Path(out['dataset_root']).name}: {out['label']} on {out['task']} "
              f"({len(seqs)} sequence{'s' * (len(seqs) != 1)})",
        subtitle="Each sequence's row opens its page with synchronised videos.",
        charts=per_frame_charts(seqs, seek=False),
        tables=[metrics_table("Per sequence", rows, hrefs, rank=False,
                              note=WE_NOTE + " Time: restoration wall time (summed in the mean row).")],
        provenance=_eval_provenance(out), config_text=config_text((out.get("settings") or {}).get("config")),
        warnings=warnings_of(list(seqs.values())),
    )
    return write_html_report(out_dir / "report.html", page)


def write_ablation_html(out_dir: str | Path, out: dict[str, Any]) -> Path:
    """``out_dir/report.html`` of an ablation (ranked method table; per-sequence PSNR and WE tables whose rows open
    ``pages/<seq>.html``) and the per-sequence comparison pages."""
    out_dir = Path(out_dir)
    methods = {label: m["results"] for label, m in out["methods"].items()}
    dirs = {label: m["dir"] for label, m in out["methods"].items()}
    hrefs = {}
    for seq in out["sequence_names"]:
        runs = {label: res["sequences"][seq] for label, res in methods.items() if seq in res["sequences"]}
        pages = {label: out_dir / dirs[label] / "sequences" / seq / SEQUENCE_PAGE for label in runs}
        media = {label: media_files(p) for label, p in pages.items()}
        if not runs or not all(m.get("restored") and m.get("observation") for m in media.values()):
            continue  # run without videos: numbers only
        write_comparison_html(out_dir / "pages" / f"{seq}.html", f"Ablation, sequence {seq}", runs, media,
                              subtitle=f"{out['task']}: every row of the ablation on {seq}",
                              links=[("back to the ablation", "../report.html")])
        hrefs[seq] = f"pages/{seq}.html"
    per_seq = {key: {seq: {label: res["sequences"][seq].get("metrics", {}).get(key)
                           for label, res in methods.items() if seq in res["sequences"]}
                     for seq in out["sequence_names"]} for key in ("psnr", "warping_error")}
    first = next(iter(methods.values()))
    page = ReportPage(
        title=f"Consistency ablation on {Path(first['dataset_root']).name}: {out['task']}, "
              f"{len(out['sequence_names'])} sequences",
        subtitle="Identical seeds and settings for every row; rows of the per-sequence tables open that sequence's "
                 "videos of every method.",
        tables=[
            metrics_table("Methods (mean over sequences; best bold, second underlined)",
                          {label: res["mean"] for label, res in methods.items()},
                          {label: f"{dirs[label]}/report.html" for label in methods}),
            ranked_rows_table("PSNR (dB) per sequence", per_seq["psnr"], METRIC_COLUMNS["psnr"], hrefs),
            ranked_rows_table("WE (x1e-2) per sequence", per_seq["warping_error"], METRIC_COLUMNS["warping_error"],
                              hrefs, note=WE_NOTE),
        ],
        provenance={**{k: v for k, v in _eval_provenance(first).items() if k not in ("method", "restoration time")},
                    "prior": str(out.get("prior")),
                    "session wall time": f"{out.get('session_wall_time_s', 0.0):.1f} s"},
        config_text=config_text(out.get("full_config")),
        warnings=warnings_of([r for res in methods.values() for r in res["sequences"].values()]),
    )
    return write_html_report(out_dir / "report.html", page)


def _cell(row: dict[str, Any]) -> str:
    return f"{row['noise']} {row['level']}"


def write_robustness_html(out_dir: str | Path, out: dict[str, Any],
                          cell_page: Callable[[dict[str, Any]], Path | None] | None = None) -> Path:
    """``out_dir/report.html`` of a robustness study (``out``: what its results.json holds, one row per noise type x
    level x method): PSNR and ORACLE-gap tables (best bold, second underlined), every cell's stopping numbers, the
    ORACLE PSNR curves of the first method per noise type with ES-WMV's stops marked. ``cell_page(row)`` locates a
    cell's own page (restore_video's html_report), linked from its row when the file exists."""
    out_dir = Path(out_dir)
    rows = out["rows"]
    by_method: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], {})[_cell(r)] = r
    psnr = {m: {c: r.get("psnr") for c, r in cells.items()} for m, cells in by_method.items()}
    gap = {m: {c: r.get("gap") for c, r in cells.items()} for m, cells in by_method.items()}
    cols = list(dict.fromkeys(_cell(r) for r in rows))
    detail_cols = [Column("PSNR", 2), Column("SSIM", 4), Column("WE (x1e-2)", 4, scale=100.0), Column("ES stop it", 0),
                   Column("returned it", 0), Column("ORACLE best PSNR", 2), Column("ORACLE best it", 0),
                   Column("ORACLE gap", 2), Column("ORACLE drop at stop", 2)]
    keys = ("psnr", "ssim", "warping_error", "es_stop_iteration", "chosen_iteration", "oracle_best_psnr",
            "oracle_best_iteration", "gap", "drop_at_stop")
    detail = []
    for r in rows:
        page = cell_page(r) if cell_page else None
        values = [str(r.get(k)) if isinstance(r.get(k), list) else r.get(k) for k in keys]
        detail.append(Row(f"{_cell(r)} · {r['method']}", values,
                          _rel(page, out_dir) if page is not None and page.is_file() else None))
    charts = []
    first = next(iter(by_method))
    for noise in dict.fromkeys(r["noise"] for r in rows):
        mine = [r for r in rows if r["noise"] == noise and r["method"] == first and r.get("curve")]
        if mine:
            charts.append(Chart(
                f"{first}: PSNR per iteration (ORACLE), {noise} noise", "iteration", "PSNR (dB)",
                [Series(r["level"], r["curve"]) for r in mine],
                markers=[Marker(r["es_stop_iteration"], f"{r['level']}: ES-WMV stop")
                         for r in mine if r.get("es_stop_iteration") is not None],
                note="ORACLE curves (ground truth), for analysis only: ES-WMV chooses from the iterates alone."))
    es = out.get("es") or {}
    prov = {"clip": out.get("clip"), "source": out.get("source"), "task": out.get("task"),
            "prior": out.get("prior") or "none", "device": out.get("device"), "preprocessing": out.get("preprocessing"),
            "ES-WMV": ", ".join(f"{k} {v}" for k, v in es.items()),
            "session wall time": f"{out.get('session_wall_time_s', 0.0):.1f} s",
            "versions": ", ".join(f"{k} {v}" for k, v in (out.get("versions") or {}).items() if v)}
    page = ReportPage(
        title=f"Robustness to unknown noise: {out.get('task')} on {out.get('clip')}",
        subtitle="The solver is never told the noise; ES-WMV picks the returned iterate.",
        charts=charts,
        tables=[Table("PSNR (dB) of the returned iterate", [Column(c, 2, "max") for c in cols],
                      [Row(m, [v.get(c) for c in cols]) for m, v in psnr.items()]),
                Table("ORACLE gap (dB): best PSNR on the curve minus the returned iterate's",
                      [Column(c, 2, "min") for c in cols], [Row(m, [v.get(c) for c in cols]) for m, v in gap.items()]),
                Table("Every cell", detail_cols, detail, rank="none", note=WE_NOTE)],
        provenance={k: str(v) for k, v in prov.items() if v not in (None, "")},
        config_text=config_text(out.get("config")),
        warnings=list(dict.fromkeys(n for r in rows for n in r.get("notes") or [])),
    )
    return write_html_report(out_dir / "report.html", page)
