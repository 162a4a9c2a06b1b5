"""The robustness summary: results.json / results.csv, report.md in DMPlug's Table 5 layout, PSNR curves.

Table layout: one column per noise type, one row per method, each cell ``low / high`` as ``PSNR / gap`` where PSNR is
the returned (ES-WMV) iterate's and the gap is ORACLE best PSNR minus it (both on the solver's PSNR curve).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidplug.evaluation.report import plot_lines, write_csv
from vidplug.io.atomic import atomic_write_json, atomic_write_text

CSV_COLUMNS = ("task", "noise", "level", "level_value", "method", "psnr", "ssim", "warping_error",
               "es_stop_iteration", "chosen_iteration", "returned_psnr_curve", "last_psnr", "oracle_best_psnr",
               "oracle_best_iteration", "gap", "drop_at_stop", "wall_time_s")
GAP_GOAL_DB, DROP_GOAL_DB = 0.5, 0.3  # the goals: gap <= 0.5 dB, stop before the curve fell > 0.3 dB


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: noise types as columns, methods as rows, ``low / high`` cells of ``PSNR / gap``."""
    types = list(dict.fromkeys(r["noise"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    index = {(r["method"], r["noise"], r["level"]): r for r in rows}
    levels = list(dict.fromkeys(r["level"] for r in rows))
    lines = [f"| method ({' / '.join(levels)}: PSNR / gap dB) | " + " | ".join(types) + " |",
             "|---|" + "---|" * len(types)]
    for m in methods:
        cells = []
        for t in types:
            parts = []
            for lv in levels:
                r = index.get((m, t, lv))
                parts.append("-" if r is None else f"{_num(r.get('psnr'))} / {_num(r.get('gap'))}")
            cells.append(" · ".join(parts))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail(rows: list[dict[str, Any]]) -> str:
    """Markdown: every row with the stopping columns and the goals (ORACLE columns labelled)."""
    head = ("| noise | level | method | PSNR | SSIM | WE x1e-2 | ES stop it | returned it | last PSNR | "
            "ORACLE best PSNR (it) | gap | ORACLE drop at stop | goals |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        goals = "-"
        if r.get("gap") is not None:
            ok_gap = r["gap"] <= GAP_GOAL_DB
            ok_drop = r.get("es_stop_iteration") is not None and r["drop_at_stop"] <= DROP_GOAL_DB
            goals = f"gap {'met' if ok_gap else 'NOT met'}, stop {'met' if ok_drop else 'NOT met'}"
        we = None if r.get("warping_error") is None else r["warping_error"] * 100
        stop = r.get("es_stop_iteration")
        lines.append(
            f"| {r['noise']} | {r['level']} ({r['level_value']:g}) | {r['method']} | {_num(r.get('psnr'))} | "
            f"{_num(r.get('ssim'), '{:.4f}')} | {_num(we, '{:.4f}')} | {'never' if stop is None and r.get('gap') is not None else _num(stop, '{}')} | "
            f"{_num(r.get('chosen_iteration'), '{}')} | {_num(r.get('last_psnr'))} | "
            f"{_num(r.get('oracle_best_psnr'))} ({_num(r.get('oracle_best_iteration'), '{}')}) | {_num(r.get('gap'))} | "
            f"{_num(r.get('drop_at_stop'))} | {goals} |")
    return "\n".join(lines)


def plot_curves(out_dir: Path, rows: list[dict[str, Any]], method: str = "vidplug") -> list[str]:
    """One PNG per noise type: the ORACLE PSNR curve per level with ES-WMV's stop and choice marked."""
    written = []
    for t in dict.fromkeys(r["noise"] for r in rows):
        mine = [r for r in rows if r["noise"] == t and r["method"] == method and r.get("curve")]
        series = {f"{r['level']} ({r['level_value']:g})": r["curve"] for r in mine}
        marks = {f"{r['level']} ({r['level_value']:g})": [
            *([(r["es_stop_iteration"], "x", f"ES-WMV fired (it {r['es_stop_iteration']})")]
              if r.get("es_stop_iteration") is not None else []),
            (r["chosen_iteration"] if isinstance(r["chosen_iteration"], int) else -1, "o",
             f"returned (it {r['chosen_iteration']})"),
            (r["oracle_best_iteration"], "*", "ORACLE best")] for r in mine}
        rel = f"plots/psnr_{t}.png"
        if plot_lines(series, out_dir / rel, title=f"{method}: PSNR per iteration (ORACLE), {t} noise",
                      xlabel="iteration", ylabel="PSNR (dB)", marks=marks):
            written.append(rel)
    return written


def write_robustness_summary(out_dir: str | Path, out: dict[str, Any], plots: bool = True) -> None:
    """results.json, results.csv, report.md (and plots/psnr_<type>.png) from :func:`run_robustness`'s result."""
    out_dir = Path(out_dir)
    rows = out["rows"]
    atomic_write_json(out_dir / "results.json", out)
    write_csv(out_dir / "results.csv", {str(i): r for i, r in enumerate(rows)}, "row", CSV_COLUMNS)
    pngs = plot_curves(out_dir, rows) if plots else []
    es = out["es"]
    text = [
        f"# Robustness to unknown noise: {out['task']} on {out['clip']}", "",
        f"Prior `{out['prior']}`; device {out['device']}; {out['preprocessing']}. The solver is never told the noise. "
        f"ES-WMV: {es['mode']} W={es['window']} P={es['patience']} downscale {es['downscale']}; the run continues "
        "to the last iteration (solver.es_observe) so the whole curve is known, and returns ES-WMV's choice.",
        "PSNR: the returned iterate's (8-bit output). gap = ORACLE best PSNR on the curve minus the returned "
        "iterate's PSNR on the same curve. ORACLE columns use the ground truth; nothing chosen here does.", "",
        table(rows), "", "## Every cell", "", detail(rows), "",
        f"Goals: gap <= {GAP_GOAL_DB} dB and ES-WMV fires before the curve has fallen more than {DROP_GOAL_DB} dB "
        "below its best so far.", "",
        *[f"![{p}]({p})" for p in pngs],
    ]
    atomic_write_text(out_dir / "report.md", "\n".join(text) + "\n")
    from vidplug.evaluation.html_pages import write_robustness_html

    write_robustness_html(out_dir, out, cell_page=lambda r: out_dir / r["dir"] / "report.html" if r.get("dir") else None)
