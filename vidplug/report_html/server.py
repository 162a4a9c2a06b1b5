"""``vidplug view DIR``: serve a run folder on 127.0.0.1 so its report pages open in a browser (locally, or on a
remote GPU box through ``ssh -L``).

The standard library's ``http.server`` is used as is, plus HTTP range requests (``206 Partial Content``), which
it lacks: browsers fetch videos in ranges and seek with them.
"""

from __future__ import annotations

import os
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vidplug.errors import VidplugError

HOST = "127.0.0.1"  # never another interface: a report may show private footage
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` support (one range per request, as browsers ask for media)."""

    _left: int | None = None  # bytes still to send of the current range

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-cache")  # a rerun rewrites the files in place
        super().end_headers()

    def send_head(self):
        self._left = None
        m = _RANGE.match(self.headers.get("Range", "").strip())
        path = self.translate_path(self.path)
        if m is None or os.path.isdir(path) or not (m.group(1) or m.group(2)):
            return super().send_head()
        try:
            f = open(path, "rb")  # noqa: SIM115 -- handed to the server, which closes it
        except OSError:
            self.send_error(404, "File not found")
            return None
        size = os.fstat(f.fileno()).st_size
        first, last = m.groups()
        if first:
            start, stop = int(first), min(int(last), size - 1) if last else size - 1
        else:  # "bytes=-N": the last N bytes
            start, stop = max(size - int(last), 0), size - 1
        if start >= size or start > stop:
            f.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(stop - start + 1))
        self.end_headers()
        f.seek(start)
        self._left = stop - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        if self._left is None:
            return super().copyfile(source, outputfile)
        while self._left > 0:
            buf = source.read(min(64 * 1024, self._left))
            if not buf:
                break
            outputfile.write(buf)
            self._left -= len(buf)

    def log_message(self, format, *args) -> None:  # noqa: A002 -- the base class's signature
        pass  # quiet: the terminal shows the URL, not every request


def find_page(folder: Path) -> Path:
    """The page to open in ``folder``: its ``report.html``, else the first ``*.html`` below it."""
    if (folder / "report.html").is_file():
        return folder / "report.html"
    pages = sorted(folder.rglob("*.html"), key=lambda p: (len(p.parts), str(p)))
    if not pages:
        raise VidplugError(f"{folder} holds no report page (*.html); write one with restore --report, demo, eval "
                           "or ablate")
    return pages[0]


def start_server(folder: str | Path, port: int = 8000) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``folder`` on 127.0.0.1:``port`` (0 = any free port) in a background thread.

    Returns the server (call ``shutdown()``) and the URL of the folder's report page.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise VidplugError(f"{folder} is not a folder; pass the folder a run wrote (the one holding report.html)")
    page = find_page(folder)
    handler = partial(RangeRequestHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise VidplugError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another --port (0 = any free "
                           "port)") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{HOST}:{server.server_address[1]}/{page.relative_to(folder).as_posix()}"
    return server, url
