"""report.html of a tiny restore, eval and ablate in headless Chromium: videos load and play, controls keep every
video on the same frame, the wipe and zoom show the videos' own pixels, charts seek, nothing fails to load."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # one tiny restore, eval and ablate, then ~10 s of browsing

VIDEOS = "Array.from(document.querySelectorAll('#player video'))"
FRAMES = f"{VIDEOS}.map(v => vidplugReport.frameOf(v.currentTime))"
SETTLED = f"{VIDEOS}.every(v => !v.seeking && v.readyState >= 2)"
# the RGBA pixel (x, y) of video i's current frame, drawn at its own size
VIDEO_PIXEL = """([i, x, y]) => { const v = document.querySelectorAll('#player video')[i];
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0); return Array.from(g.getImageData(x, y, 1, 1).data); }"""
CANVAS_PIXEL = """([sel, x, y]) => Array.from(document.querySelector(sel).getContext('2d')
  .getImageData(x, y, 1, 1).data)"""


def _labels(page) -> list[str]:
    return page.evaluate(f"{VIDEOS}.map(v => v.dataset.label)")


def _seeked_to(page, frame: int) -> None:
    page.wait_for_function(f"{SETTLED} && {FRAMES}.every(f => f === {frame})", timeout=10_000)


def _plays(page) -> None:
    """Play: every video's currentTime advances; pause: all stop on one frame."""
    page.select_option("#speed", "0.5")  # short clips (4 frames = 0.16 s) must not loop back before we look
    page.click("#play")
    page.wait_for_function(f"{VIDEOS}.every(v => v.currentTime > Math.min(0.2, v.duration * 0.4))", timeout=10_000)
    page.click("#play")
    page.wait_for_function(SETTLED)
    assert len(set(page.evaluate(FRAMES))) == 1


def _chart_click_seeks(page, frame: int) -> None:
    dot = page.locator(f"#charts svg circle[data-x='{frame}']").first
    dot.scroll_into_view_if_needed()
    box = dot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _seeked_to(page, frame)
    assert page.input_value("#seek") == str(frame)


def _markdown_marks(path) -> list[list[str]]:
    """Best (b) / second (u) marks of the first table in a report.md."""
    text = path.read_text().split("| method |", 1)[1].split("\n\n", 1)[0]
    rows = [ln.strip().strip("|").split(" | ")[1:] for ln in text.splitlines()[2:]]  # after header and |---|
    return [["b" if "**" in c else "u" if "<u>" in c else "" for c in cells] for cells in rows]


def _shown_frame(page, video_file, i: int) -> int:
    """Which frame of ``video_file`` (decoded here) the page's video ``i`` shows: the nearest along one row."""
    from vidplug.io import read_video

    frames = read_video(video_file).frames  # (T, 3, H, W) in [0, 1]
    row = torch.tensor([page.evaluate(VIDEO_PIXEL, [i, x, 24])[:3] for x in range(0, frames.shape[-1], 3)])
    ours = frames[:, :, 24, ::3].permute(0, 2, 1) * 255  # (T, W/3, 3)
    return int((ours - row).abs().mean(dim=(1, 2)).argmin())


def _close(a, b, tol=2) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_restore_page(open_page, runs, served, tmp_path):
    page, problems = open_page(served(runs["restore"] / "report.html"))
    assert _labels(page) == ["observation", "restored (bicubic)", "ground truth"]
    sizes = page.evaluate(f"{VIDEOS}.map(v => [v.videoWidth, v.videoHeight, v.duration])")
    assert all(s[:2] == [64, 48] for s in sizes) and all(abs(s[2] - 1.0) < 0.05 for s in sizes)  # 12 frames @ 12 fps
    _plays(page)

    # seek: the slider, the arrow keys and a chart point move every video to the same frame
    page.locator("#seek").fill("7")
    _seeked_to(page, 7)
    assert _shown_frame(page, runs["restore"] / "report_media" / "ground_truth.mp4", 2) == 7  # the picture too
    page.keyboard.press("ArrowRight")
    _seeked_to(page, 8)
    assert "frame 8 / 11" in page.inner_text("#counter")
    _chart_click_seeks(page, 4)
    tip = page.locator("#charts .chart").first.locator(".tip")
    assert tip.is_visible() and "frame 4" in tip.inner_text()  # hovering shows the values
    psnr4 = json.loads((runs["restore"] / "report.json").read_text())["metrics"]["per_frame"]["psnr"][4]
    assert f"{psnr4:.3f}"[:5] in tip.inner_text()

    # wipe: observation left, ground truth right; the probed pixel follows the split
    page.select_option("#wipe-a", "0")
    page.select_option("#wipe-b", "2")
    diffs = [(sum(abs(a - b) for a, b in zip(page.evaluate(VIDEO_PIXEL, [0, x, 24]),
                                             page.evaluate(VIDEO_PIXEL, [2, x, 24]), strict=True)), x)
             for x in range(30, 40)]
    _, x = max(diffs)
    obs, truth = page.evaluate(VIDEO_PIXEL, [0, x, 24]), page.evaluate(VIDEO_PIXEL, [2, x, 24])
    assert not _close(obs, truth, tol=6)
    page.locator("#wipe-split").fill("1000")  # split at the right edge: all left (observation)
    assert _close(page.evaluate(CANVAS_PIXEL, ["#wipe-canvas", x, 24]), obs)
    page.locator("#wipe-split").fill("0")  # all right (ground truth)
    assert _close(page.evaluate(CANVAS_PIXEL, ["#wipe-canvas", x, 24]), truth)

    # zoom: drag a region on the restored panel; every zoom canvas shows that region's pixels, magnified k x k
    restored = page.locator("#player video").nth(1)
    restored.scroll_into_view_if_needed()
    box = restored.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=4)
    page.mouse.up()
    zoom = page.evaluate("vidplugReport.zoom")
    assert 14 <= zoom["w"] <= 18 and 10 <= zoom["h"] <= 14 and zoom["k"] >= 4
    for i in range(3):
        for dx, dy in ((0, 0), (3, 5), (zoom["w"] - 1, zoom["h"] - 1)):
            want = page.evaluate(VIDEO_PIXEL, [i, zoom["x"] + dx, zoom["y"] + dy])
            sel = f"#zoom figure:nth-child({i + 1}) canvas"
            k = zoom["k"]
            for ox, oy in ((0, 0), (k - 1, k - 1)):  # both corners of the k x k block: nearest neighbour
                assert page.evaluate(CANVAS_PIXEL, [sel, dx * k + ox, dy * k + oy]) == want

    shot = tmp_path / "restore_report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems.items == []


def test_restore_page_from_a_file_url(open_page, runs):
    page, problems = open_page((runs["restore"] / "report.html").as_uri())
    assert len(_labels(page)) == 3
    _plays(page)
    page.keyboard.press(" ")  # space plays and pauses too
    page.wait_for_function(f"vidplugReport.playing && {VIDEOS}.every(v => !v.paused)")
    page.keyboard.press(" ")
    page.wait_for_function(f"!vidplugReport.playing && {VIDEOS}.every(v => v.paused)")
    # every warning of the run is on screen (here: LPIPS without its AlexNet weights, offline)
    notes = json.loads((runs["restore"] / "report.json").read_text())
    expected = [n for n in [*notes["notes"], notes["metrics"].get("lpips_note")] if n]
    shown = page.eval_on_selector_all("#warnings li", "ls => ls.map(l => l.textContent)")
    assert shown == expected and all(page.locator("#warnings li").nth(i).is_visible() for i in range(len(shown)))
    page.keyboard.press("End")
    _seeked_to(page, 11)
    assert problems.items == []


def test_eval_page_rows_open_the_sequence_pages(open_page, runs, served, tmp_path):
    page, problems = open_page(served(runs["eval"] / "report.html"))
    links = page.eval_on_selector_all("#tables a", "as => as.map(a => a.getAttribute('href'))")
    assert links == ["sequences/seq-a/report.html", "sequences/seq-b/report.html"]
    assert page.locator("#charts svg").count() >= 1 and page.locator("#player").count() == 0
    page.click("#tables a >> nth=1")
    page.wait_for_url("**/sequences/seq-b/report.html")
    page.wait_for_function(f"{VIDEOS}.length === 3 && {VIDEOS}.every(v => v.readyState >= 2)", timeout=10_000)
    _plays(page)
    _chart_click_seeks(page, 2)
    page.screenshot(path=str(tmp_path / "eval_sequence.png"), full_page=True)
    page.click("text=back to the evaluation")
    page.wait_for_url("**/eval/report.html")
    assert problems.items == []


def test_ablate_page_ranks_methods_and_opens_each_sequence(open_page, runs, served, tmp_path):
    page, problems = open_page(served(runs["ablate"] / "report.html"))
    methods = page.locator("section[data-table='0']")
    assert methods.locator("tbody tr").count() == 5  # four variants + bicubic
    marks = page.eval_on_selector_all("section[data-table='0'] tbody tr", """rows => rows.map(r =>
        Array.from(r.querySelectorAll('td')).slice(1).map(td => td.querySelector('b') ? 'b' : td.querySelector('u')
        ? 'u' : ''))""")
    assert marks == _markdown_marks(runs["ablate"] / "report.md") and any("u" in r for r in marks)
    page.click("section[data-table='1'] a:text('seq-a')")
    page.wait_for_url("**/pages/seq-a.html")
    page.wait_for_function(f"{VIDEOS}.length === 7 && {VIDEOS}.every(v => v.readyState >= 2)", timeout=10_000)
    labels = _labels(page)
    assert labels[0] == "observation" and labels[-1] == "ground truth" and "Bicubic / A^+" in labels
    _plays(page)
    page.locator("#seek").fill("2")
    _seeked_to(page, 2)
    _chart_click_seeks(page, 1)
    page.screenshot(path=str(tmp_path / "ablate_sequence.png"), full_page=True)
    assert problems.items == []


def test_restore_page_seeks_behind_a_server_without_range_requests(open_page, runs):
    """python -m http.server answers no Range requests; the page still seeks (it plays the videos from memory)."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(runs["restore"])))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page, problems = open_page(f"http://127.0.0.1:{server.server_address[1]}/report.html")
        page.locator("#seek").fill("9")
        _seeked_to(page, 9)
        assert problems.items == []
    finally:
        server.shutdown()
