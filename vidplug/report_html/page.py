"""The data a report page shows, and :func:`write_html_report`, which turns it into one self-contained HTML file.

A page is plain data (:class:`ReportPage`): videos by relative URL, charts as number series, tables as raw
values with how to format and rank them, provenance as text, and every warning. The page's behaviour lives in
``static/*.js`` and ``static/report.css`` (written for this project, no library), inlined into the file with
the data as JSON, so the page needs no network and works from ``file://`` and from any static HTTP server.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from vidplug.io.atomic import atomic_write_with


@dataclass
class Video:
    label: str  # panel title, e.g. "observation", "restored (dmplug)", "ground truth"
    src: str  # URL relative to the page (an H.264 yuv420p MP4, see vidplug.report_html.media)


@dataclass
class Series:
    label: str
    values: list[float | None]  # one value per x = 0, 1, ...; None = gap


@dataclass
class Marker:
    x: int  # position on the chart's x axis
    label: str  # e.g. "ES-WMV stop (iteration 41)"


@dataclass
class Chart:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    seek: bool = False  # x is a frame index of the page's videos: clicking seeks every video there
    logy: bool = False
    markers: list[Marker] = field(default_factory=list)
    note: str = ""  # shown under the chart


@dataclass
class Column:
    title: str
    decimals: int = 2  # shown value = value * scale, with this many decimals
    better: Literal["max", "min"] | None = None  # ranked: best bold, second underlined (as report.md)
    scale: float = 1.0


@dataclass
class Row:
    label: str
    values: list[float | str | None]  # one per column; None = n/a
    href: str | None = None  # the row's label links here (e.g. a sequence's page)


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[Row]
    rank: Literal["columns", "rows", "none"] = "columns"  # compare values down each column, or along each row
    note: str = ""


@dataclass
class ReportPage:
    """Everything one page shows. ``fps``/``frames`` describe the videos (all the same length and size)."""

    title: str
    subtitle: str = ""
    fps: float = 25.0
    frames: int = 0
    videos: list[Video] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)  # label -> text (prior, flow model, device, ...)
    config_text: str = ""  # the resolved config, shown verbatim
    warnings: list[str] = field(default_factory=list)  # shown at the top, every one
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, relative URL), e.g. the parent report


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become null (a gap / n/a on the page)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# The page's script, in parts run in this order inside one function scope (they share its names).
SCRIPTS = ("base.js", "player.js", "charts.js", "tables.js")


def _static(name: str) -> str:
    return (resources.files("vidplug.report_html") / "static" / name).read_text(encoding="utf-8")


def render_html(page: ReportPage) -> str:
    """The page as one HTML document (CSS, JS and data inline)."""
    data = json.dumps(_finite(asdict(page)), allow_nan=False)
    data = data.replace("</", "<\\/")  # a "</script>" inside a string must not end the data block
    title = page.title.replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"  # no favicon request (a 404 in the console)
        f"<title>{title}</title>\n<style>\n{_static('report.css')}</style>\n</head>\n<body>\n"
        "<noscript>This report needs JavaScript; the numbers are also in the .json/.md beside it.</noscript>\n"
        "<div id=\"app\"></div>\n"
        f"<script type=\"application/json\" id=\"vp-data\">{data}</script>\n"
        "<script>\n(function () {\n'use strict';\n" + "".join(_static(n) for n in SCRIPTS) + "})();\n</script>\n"
        "</body>\n</html>\n"
    )


def write_html_report(path: str | Path, page: ReportPage) -> Path:
    """Write ``page`` to ``path`` (atomically). Video URLs in the page are relative to ``path``'s folder."""
    path = Path(path)
    text = render_html(page)
    atomic_write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
