"""Evaluation outputs: results.json / results.csv, report.md tables (best **bold**, second <u>underlined</u>) and
plots/*.png (per-frame PSNR and warping error, solver loss curves), all written atomically.

Metric values are the per-sequence means of :func:`vidplug.pipeline.restore_video`'s reports; a table row over
several sequences is the mean of the sequence means. The warping error is stored raw (MSE on [0, 1] frames) and
shown x1e-2 as in the published tables.
"""

from __future__ import annotations

import csv
import io
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from vidplug.io.atomic import atomic_write_json, atomic_write_text, atomic_write_with


@dataclass(frozen=True)
class Column:
    key: str  # key in a result row
    title: str  # markdown header
    fmt: str  # format spec of the shown value
    better: str | None = None  # "max" | "min" | None (not ranked)
    scale: float = 1.0  # shown value = value * scale


METRIC_COLUMNS = (
    Column("psnr", "PSNR (dB)", ".2f", "max"),
    Column("ssim", "SSIM", ".4f", "max"),
    Column("lpips", "LPIPS", ".4f", "min"),
    Column("warping_error", "WE (x1e-2)", ".4f", "min", 100.0),
    # not ranked: a baseline without optimisation would always "win"
    Column("wall_time_s", "time (s)", ".1f"),
)
METRICS = ("psnr", "ssim", "lpips", "warping_error")
CSV_COLUMNS = ("frames", *METRICS, "we_x1e-2", "wall_time_s", "seconds_per_frame")
VERSIONED = ("torch", "torchvision", "deepinv", "diffusers", "open_clip_torch", "lpips", "opencv-python-headless")


def runtime_versions() -> dict[str, str | None]:
    """Versions of vidplug, Python and the libraries that shape the numbers."""
    import vidplug

    out: dict[str, str | None] = {"vidplug": vidplug.__version__, "python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def sequence_row(result: dict[str, Any]) -> dict[str, Any]:
    """One sequence's summary row from its restore_video report."""
    m = result.get("metrics", {})
    row = {"frames": result.get("frames"), **{k: m.get(k) for k in METRICS},
           "wall_time_s": result.get("wall_time_s"), "seconds_per_frame": result.get("seconds_per_frame")}
    row["we_x1e-2"] = None if row["warping_error"] is None else row["warping_error"] * 100
    return row


def mean_row(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean of the sequence means (metrics, seconds per frame); frames and wall time are summed."""
    rows = [sequence_row(r) for r in results]

    def mean(key):
        v = [r[key] for r in rows if r[key] is not None]
        return sum(v) / len(v) if v else None

    out = {k: mean(k) for k in (*METRICS, "we_x1e-2", "seconds_per_frame")}
    out["frames"] = sum(r["frames"] or 0 for r in rows)
    out["wall_time_s"] = sum(r["wall_time_s"] or 0.0 for r in rows)
    out["sequences"] = len(rows)
    return out


def _shown(value: Any, col: Column) -> str:
    return "n/a" if value is None else format(value * col.scale, col.fmt)


def ranked_table(rows: dict[str, dict[str, Any]], first: str = "method",
                 columns: tuple[Column, ...] = METRIC_COLUMNS, marks: bool = True) -> str:
    """Markdown table, one row per entry of ``rows``; in ranked columns the best shown value is **bold** and the
    second best <u>underlined</u> (ties share the mark; values are compared as shown)."""
    lines = [f"| {first} | " + " | ".join(c.title for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    rank: dict[str, list[str]] = {}
    for col in columns:
        if marks and col.better:
            shown = {_shown(r.get(col.key), col) for r in rows.values()} - {"n/a"}
            rank[col.key] = sorted(shown, key=float, reverse=col.better == "max")[:2]
    for name, r in rows.items():
        cells = []
        for col in columns:
            text = _shown(r.get(col.key), col)
            order = rank.get(col.key, [])
            if order and text == order[0]:
                text = f"**{text}**"
            elif len(order) > 1 and text == order[1]:
                text = f"<u>{text}</u>"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: str | Path, rows: dict[str, dict[str, Any]], first: str, columns: Iterable[str]) -> None:
    """CSV with a header ``first, *columns`` and one line per entry of ``rows`` (empty cell = not available)."""
    columns = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([first, *columns])
    for name, r in rows.items():
        writer.writerow([name, *("" if r.get(c) is None else r[c] for c in columns)])
    atomic_write_text(path, buf.getvalue())


def plot_lines(series: dict[str, list[float | None]], path: str | Path, *, title: str, xlabel: str, ylabel: str,
               logy: bool = False, marks: dict[str, list[tuple[int, str, str]]] | None = None) -> bool:
    """One line per entry of ``series`` (None values are gaps); returns False (nothing written) when all are empty.

    ``marks``: per series, points ``(x, matplotlib marker, legend label)`` drawn on that line (e.g. a stop).
    """
    series = {k: v for k, v in series.items() if v and any(x is not None for x in v)}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in series.items():
        ys = [float("nan") if v is None else v for v in values]
        line = ax.plot(range(len(values)), ys, label=label, linewidth=1.2)[0]
        for x, marker, text in (marks or {}).get(label, []):
            if 0 <= x < len(ys):
                ax.plot([x], [ys[x]], marker=marker, color=line.get_color(), linestyle="none", markersize=8,
                        label=f"{label}: {text}")
    if logy:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # frames and iterations are counts
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(series) > 6 else 1)
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return True


def per_frame(result: dict[str, Any], key: str) -> list[float | None]:
    return list(result.get("metrics", {}).get("per_frame", {}).get(key) or [])


def loss_curves(result: dict[str, Any], term: str = "total") -> dict[str, list[float | None]]:
    """``chunk i`` -> the solver's per-iteration loss (term ``total`` by default) for every solved chunk."""
    out = {}
    for chunk in result.get("chunks", []):
        values = (chunk.get("loss_history") or {}).get(term)
        if values:
            out[f"chunk {chunk['index']}"] = values
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _footer(out: dict[str, Any]) -> str:
    notes = sorted({n for r in out["sequences"].values() for n in r.get("notes", [])})
    lp = sorted({r.get("metrics", {}).get("lpips_note") for r in out["sequences"].values()} - {None})
    text = "".join(f"{n}\n\n" for n in lp) + "".join(f"Note: {n}\n\n" for n in notes)
    v = out["versions"]
    return text + "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items() if x) + "\n"


def write_eval_summary(out_dir: str | Path, out: dict[str, Any], plots: bool = True) -> None:
    """results.json, results.csv (one row per sequence), report.md and (``plots``) plots/*.png of one evaluated
    method."""
    out_dir = Path(out_dir)
    seqs = out["sequences"]
    rows = {name: sequence_row(r) for name, r in seqs.items()}
    atomic_write_json(out_dir / "results.json", out)
    write_csv(out_dir / "results.csv", rows, "sequence", CSV_COLUMNS)
    figures = []
    if plots and plot_lines({n: per_frame(r, "psnr") for n, r in seqs.items()}, out_dir / "plots" / "psnr_per_frame.png",
                  title=f"PSNR per frame ({out['label']})", xlabel="frame", ylabel="PSNR (dB)"):
        figures.append(("PSNR per frame", "plots/psnr_per_frame.png"))
    if plots and plot_lines({n: per_frame(r, "warping_error") for n, r in seqs.items()},
                  out_dir / "plots" / "warping_error_per_frame.png", title=f"Warping error ({out['label']})",
                  xlabel="frame pair (t, t+1)", ylabel="warping error (MSE)"):
        figures.append(("Warping error per frame pair", "plots/warping_error_per_frame.png"))
    for name, r in seqs.items():
        if plots and plot_lines(loss_curves(r), out_dir / "plots" / f"loss_{name}.png", title=f"Solver loss, {name}",
                      xlabel="iteration", ylabel="total loss", logy=True):
            figures.append((f"Solver loss, {name}", f"plots/loss_{name}.png"))
    table = ranked_table({**rows, "**mean**": out["mean"]}, first="sequence", marks=False)
    text = (
        f"# Evaluation on {Path(out['dataset_root']).name}: {out['label']} on {out['task']} "
        f"({_count(len(seqs), 'sequence')})\n\n"
        f"Prior: {out['prior'] or 'none'}; flow for the warping error: {out['flow_model']}; device: {out['device']}; "
        f"restoration time {out['wall_time_s']:.1f} s in all.\n\nPreprocessing: {out['preprocessing']}.\n\n"
        f"{table}\n\nWE: warping error, mean squared error on [0, 1] frames x 100.\n\n"
        + "".join(f"## {title}\n\n![{title}]({path})\n\n" for title, path in figures) + _footer(out)
    )
    atomic_write_text(out_dir / "report.md", text)
    from vidplug.evaluation.html_pages import write_eval_html

    write_eval_html(out_dir, out)


def write_ablation_summary(out_dir: str | Path, out: dict[str, Any]) -> None:
    """results.json, results.csv (one row per method), plots/<seq>_*.png and report.md of an ablation."""
    out_dir = Path(out_dir)
    methods: dict[str, dict[str, Any]] = {name: v["results"] for name, v in out["methods"].items()}
    rows = {name: r["mean"] for name, r in methods.items()}
    slim = {k: v for k, v in out.items() if k != "methods"}
    slim["methods"] = {name: {k: v for k, v in m.items() if k != "results"} | {"mean": methods[name]["mean"]}
                       for name, m in out["methods"].items()}
    atomic_write_json(out_dir / "results.json", {**slim, "per_sequence": {
        name: {s: sequence_row(r) for s, r in res["sequences"].items()} for name, res in methods.items()}})
    write_csv(out_dir / "results.csv", rows, "method", (*CSV_COLUMNS, "sequences"))
    per_seq_rows = {f"{name} / {s}": sequence_row(r) for name, res in methods.items()
                    for s, r in res["sequences"].items()}
    write_csv(out_dir / "results_per_sequence.csv", per_seq_rows, "method / sequence", CSV_COLUMNS)
    plots = []
    for seq in out["sequence_names"]:
        runs = {name: res["sequences"][seq] for name, res in methods.items() if seq in res["sequences"]}
        for key, title, ylabel in (("psnr", "PSNR per frame", "PSNR (dB)"),
                                   ("warping_error", "Warping error per frame pair", "warping error (MSE)")):
            rel = f"plots/{seq}_{key}_per_frame.png"
            if plot_lines({n: per_frame(r, key) for n, r in runs.items()}, out_dir / rel, title=f"{title}, {seq}",
                          xlabel="frame", ylabel=ylabel):
                plots.append((f"{title}, {seq}", rel))
        curves = {n: loss_curves(r).get("chunk 0") for n, r in runs.items()}
        rel = f"plots/{seq}_loss.png"
        if plot_lines(curves, out_dir / rel, title=f"Solver loss (first chunk), {seq}", xlabel="iteration",
                      ylabel="total loss", logy=True):
            plots.append((f"Solver loss (first chunk), {seq}", rel))
    first = next(iter(methods.values()))
    text = (
        f"# Consistency ablation on {Path(first['dataset_root']).name}: {out['task']}, "
        f"{_count(len(out['sequence_names']), 'sequence')}\n\n"
        f"Prior: {out['prior']}; flow for the warping error: {first['flow_model']}; device: {first['device']}. "
        f"Preprocessing: {first['preprocessing']}. Identical seeds and settings for every row.\n\n"
        f"{ranked_table(rows)}\n\nBest **bold**, second best <u>underlined</u>. WE: warping error (mean squared "
        "error on [0, 1] frames) x 100. Time: restoration wall time summed over sequences. Per-sequence numbers: "
        "results_per_sequence.csv; each method's own report: <method dir>/report.md.\n\n"
        + "".join(f"## {title}\n\n![{title}]({path})\n\n" for title, path in plots)
        + _footer({"sequences": {f"{n}/{s}": r for n, res in methods.items() for s, r in res["sequences"].items()},
                   "versions": out["versions"]})
    )
    atomic_write_text(out_dir / "report.md", text)
    from vidplug.evaluation.html_pages import write_ablation_html

    write_ablation_html(out_dir, out)
