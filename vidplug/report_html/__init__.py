"""Self-contained HTML report pages: synchronised comparison videos, wipe, zoom, charts, tables, provenance.

:func:`write_html_report` renders any :class:`ReportPage` (plain data); :func:`write_restore_html` and
:func:`write_comparison_html` build pages from restore reports; :class:`ReportMedia` writes the videos a browser
plays (H.264 yuv420p, faststart, even sizes). ``vidplug view DIR`` serves a folder on 127.0.0.1.
"""

from vidplug.report_html.media import ReportMedia, WebVideoWriter, pad_even, upsample_nearest
from vidplug.report_html.page import (
    Chart,
    Column,
    Marker,
    ReportPage,
    Row,
    Series,
    Table,
    Video,
    write_html_report,
)
from vidplug.report_html.restore_page import (
    media_dir_for,
    media_files,
    write_comparison_html,
    write_restore_html,
)

__all__ = [
    "Chart",
    "Column",
    "Marker",
    "ReportMedia",
    "ReportPage",
    "Row",
    "Series",
    "Table",
    "Video",
    "WebVideoWriter",
    "media_dir_for",
    "media_files",
    "pad_even",
    "upsample_nearest",
    "write_comparison_html",
    "write_html_report",
    "write_restore_html",
]
