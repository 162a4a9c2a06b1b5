"""Browser tests: report pages written by a tiny restore, eval and ablate, opened in headless Chromium.

Chromium comes from the system (Debian's ``chromium`` package; ``.ci/run`` installs it) and is driven by Playwright
with ``executable_path`` (Playwright's own browser download is not used). Without Playwright or a Chromium the
tests are skipped with the reason; they never pass without running.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import make_translating_video

PAGE_TIMEOUT_MS = 20_000


def chromium_path() -> str | None:
    """``$VIDPLUG_CHROMIUM``, else the first of chromium / chromium-browser / google-chrome on PATH."""
    if os.environ.get("VIDPLUG_CHROMIUM"):
        return os.environ["VIDPLUG_CHROMIUM"]
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium, or set VIDPLUG_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


class PageProblems:
    """Console errors, page errors, failed requests and HTTP errors seen by a page."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("console", lambda m: self.items.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.items.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: self.items.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


@pytest.fixture
def open_page(browser):
    """``open_page(url) -> (page, problems)``: a fresh page, loaded, with every video ready (readyState >= 2)."""
    pages = []

    def _open(url: str):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = PageProblems(page)
        pages.append(page)
        page.goto(url)
        page.wait_for_function("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2)",
                               timeout=PAGE_TIMEOUT_MS)
        return page, problems

    yield _open
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def runs(tmp_path_factory, davis_root) -> dict[str, Path]:
    """Folders of a tiny restore (bicubic, SR x4), a tiny eval (bicubic) and a tiny ablate (tiny random prior)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from tests.conftest import tiny_models
    from tests.unit.test_evaluation import READ, _cfg
    from vidplug.cli import main
    from vidplug.evaluation import evaluate_davis, run_ablation
    from vidplug.io import write_video

    root = tmp_path_factory.mktemp("runs")
    clip = write_video(make_translating_video(12, 48, 64, shift=2, seed=3), root / "clip.mp4", fps=12)
    restore = root / "restore"
    assert main(["restore", str(clip), "--simulate", "--task", "sr4", "--method", "bicubic", "--out",
                 str(restore / "restored.mp4"), "--report", str(restore / "report.json"), "--no-progress",
                 "--set", "consistency.flow_model=dis"]) == 0
    evaluate_davis(davis_root, root / "eval", _cfg("method=bicubic"), read=READ, progress=False)
    full = _cfg()
    run_ablation(davis_root, root / "ablate", full, read=READ, baselines=("bicubic",), progress=False,
                 models=tiny_models(full), sequences=["seq-a"])
    return {"restore": restore, "eval": root / "eval", "ablate": root / "ablate"}


@pytest.fixture(scope="session")
def served(runs):
    """``vidplug view``'s server on the runs' parent folder: ``served(path) -> URL`` of a file under it."""
    from vidplug.report_html.server import start_server

    base = runs["restore"].parent  # holds restore/, eval/, ablate/
    server, url = start_server(base, port=0)
    origin = url.split("/", 3)[:3]
    yield lambda path: "/".join(origin) + "/" + Path(path).relative_to(base).as_posix()
    server.shutdown()
