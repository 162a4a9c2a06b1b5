"""report.html without a browser: the report videos' format, the page's self-containment and data, the pages
each command writes, and `vidplug view`'s server (range requests, 127.0.0.1 only)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests.conftest import make_translating_video
from vidplug.cli import main
from vidplug.errors import VidplugError
from vidplug.io import read_video, write_video
from vidplug.report_html import (
    Chart,
    Column,
    ReportMedia,
    ReportPage,
    Row,
    Series,
    Table,
    Video,
    WebVideoWriter,
    pad_even,
    upsample_nearest,
    write_html_report,
)
from vidplug.report_html.server import start_server

REPO = Path(__file__).resolve().parents[2]


def _stream(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.pix_fmt, s.width, s.height, s.codec_context.name


def _page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="vp-data">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</"))


def test_web_video_is_yuv420p_even_faststart_and_keeps_the_pixels(tmp_path):
    frames = make_translating_video(5, 33, 47)  # odd sizes: the run's own writer would use yuv444p
    path = tmp_path / "v.mp4"
    with WebVideoWriter(path, fps=10) as w:
        w.write(frames)
    assert _stream(path) == ("yuv420p", 48, 34, "h264")
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # index first: playable while downloading
    back = read_video(path).frames
    assert back.shape == (5, 3, 34, 48)
    mse = torch.mean((back[..., :33, :47] - frames) ** 2)
    assert 10 * torch.log10(1 / mse) > 30  # random colours: 4:2:0 chroma caps this near 32 dB
    assert torch.allclose(back[..., 33, :47], back[..., 32, :47], atol=0.06)  # padding replicates the edge


def test_pad_even_and_nearest_upsampling():
    x = torch.rand(2, 3, 5, 7)
    assert pad_even(x).shape == (2, 3, 6, 8) and torch.equal(pad_even(x)[..., :5, :7], x)
    assert pad_even(x[..., :4, :6]) is not None and pad_even(x[..., :4, :6]).shape == (2, 3, 4, 6)
    up = upsample_nearest(x, (20, 28))
    assert torch.equal(up[..., ::4, ::4], x) and torch.equal(up[..., 3::4, 3::4], x)  # flat 4x4 blocks


def test_report_media_streams_chunks_and_aborts_cleanly(tmp_path):
    obs, truth = torch.rand(6, 3, 4, 4), torch.rand(6, 3, 16, 16)
    media = ReportMedia(tmp_path / "m", fps=5)
    for lo in (0, 3):
        media.write(truth[lo : lo + 3], obs[lo : lo + 3], truth[lo : lo + 3])
    files = media.close()
    assert sorted(files) == ["ground_truth", "observation", "restored"]
    assert all(_stream(p)[:3] == ("yuv420p", 16, 16) for p in files.values())
    assert read_video(files["observation"]).frames.shape[0] == 6
    failed = ReportMedia(tmp_path / "n", fps=5)
    failed.write(truth[:3], obs[:3], None)
    failed.abort()
    assert not any((tmp_path / "n").glob("*.mp4"))


def test_page_is_self_contained_and_carries_its_data(tmp_path):
    page = ReportPage(
        title="t </script><b>", fps=12, frames=3, videos=[Video("a", "m/a.mp4")],
        charts=[Chart("c", "frame", "dB", [Series("s", [1.0, float("nan"), 3.0])], seek=True)],
        tables=[Table("m", [Column("PSNR", 2, "max")], [Row("r", [1.5], "x.html")])],
        provenance={"prior": "tiny"}, warnings=["CLIP weights absent: semantic term off"])
    path = write_html_report(tmp_path / "p.html", page)
    text = path.read_text(encoding="utf-8")
    # nothing is fetched from elsewhere: no external script/style/link, every URL relative
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script src" not in text
    assert "<title>t &lt;/script>&lt;b></title>" in text
    data = _page_data(path)
    assert data["title"] == "t </script><b>" and data["charts"][0]["series"][0]["values"] == [1.0, None, 3.0]
    assert data["warnings"] == ["CLIP weights absent: semantic term off"] and data["videos"][0]["src"] == "m/a.mp4"


@pytest.mark.slow
def test_restore_report_writes_the_page_beside_the_json(tmp_path, capsys):
    clip = write_video(make_translating_video(6, 32, 32), tmp_path / "clip.mp4", fps=6)
    out = tmp_path / "run"
    assert main(["restore", str(clip), "--simulate", "--task", "sr4", "--method", "bicubic", "--out",
                 str(out / "restored.mp4"), "--report", str(out / "report.json"), "--no-progress",
                 "--set", "consistency.flow_model=dis"]) == 0
    assert "report page: " in capsys.readouterr().out
    data = _page_data(out / "report.html")
    assert [v["label"] for v in data["videos"]] == ["observation", "restored (bicubic)", "ground truth"]
    assert all((out / v["src"]).is_file() for v in data["videos"])
    assert data["frames"] == 6 and data["fps"] == 6
    report = json.loads((out / "report.json").read_text())
    psnr = next(c for c in data["charts"] if c["title"] == "PSNR per frame")
    assert psnr["seek"] and psnr["series"][0]["values"] == report["metrics"]["per_frame"]["psnr"]
    assert data["tables"][0]["rows"][0]["values"][0] == report["metrics"]["psnr"]
    assert data["provenance"]["flow model"] == "opencv_dis" and "torch" in data["provenance"]["versions"]
    assert any("LPIPS" in w for w in data["warnings"]) or report["metrics"]["lpips"] is not None
    assert "task:" in data["config_text"]
    assert sum(p.stat().st_size for p in out.rglob("*")) < 2_000_000

    again = tmp_path / "again"
    assert main(["restore", str(clip), "--simulate", "--task", "sr4", "--method", "bicubic", "--out",
                 str(again / "restored.mp4"), "--report", str(again / "report.json"), "--no-progress",
                 "--no-html", "--set", "consistency.flow_model=dis"]) == 0
    assert not (again / "report.html").exists() and not (again / "report_media").exists()


def test_view_server_serves_ranges_on_localhost_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.html").write_text("<html></html>")
    blob = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (tmp_path / "v.mp4").write_bytes(blob)
    server, url = start_server(tmp_path, port=0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and url == f"http://127.0.0.1:{port}/sub/report.html"
        base = f"http://127.0.0.1:{port}/v.mp4"
        with urllib.request.urlopen(urllib.request.Request(base, headers={"Range": "bytes=100-199"})) as r:
            assert r.status == 206 and r.headers["Content-Range"] == "bytes 100-199/5000" and r.read() == blob[100:200]
        with urllib.request.urlopen(urllib.request.Request(base, headers={"Range": "bytes=-10"})) as r:
            assert r.read() == blob[-10:]
        with urllib.request.urlopen(base) as r:
            assert r.status == 200 and r.read() == blob and r.headers["Accept-Ranges"] == "bytes"
        with pytest.raises(urllib.error.HTTPError, match="416"):
            urllib.request.urlopen(urllib.request.Request(base, headers={"Range": "bytes=6000-"}))
    finally:
        server.shutdown()


def test_view_rejects_a_missing_folder_or_one_without_pages(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(VidplugError, match="holds no report page"):
        start_server(tmp_path, port=0)


@pytest.mark.slow
def test_eval_page_rows_link_every_sequence_page(davis_root, tmp_path):
    from tests.unit.test_evaluation import READ, _cfg
    from vidplug.evaluation import evaluate_davis

    out = tmp_path / "eval"
    res = evaluate_davis(davis_root, out, _cfg("method=bicubic"), read=READ, progress=False)
    data = _page_data(out / "report.html")
    rows = data["tables"][0]["rows"]
    assert [r["label"] for r in rows] == [*res["sequences"], "mean"]
    assert rows[0]["values"][0] == res["sequences"]["seq-a"]["metrics"]["psnr"]
    for row in rows[:-1]:
        seq_page = _page_data(out / row["href"])
        assert seq_page["links"] == [["back to the evaluation", "../../report.html"]]
        assert len(seq_page["videos"]) == 3 and all((out / row["href"]).parent.joinpath(v["src"]).is_file()
                                                    for v in seq_page["videos"])
    assert rows[-1]["href"] is None and data["videos"] == []


@pytest.mark.slow
def test_view_command_prints_a_url_that_serves_the_page(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "report.html").write_text("<html>vidplug</html>")
    proc = subprocess.Popen([sys.executable, "-m", "vidplug", "view", str(tmp_path), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/report\.html)", line).group(1)
        with urllib.request.urlopen(url) as r:
            assert r.read() == b"<html>vidplug</html>"
        assert "ssh -L" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _robustness_out(tmp_path):
    rows = []
    for noise in ("gaussian", "impulse"):
        for j, level in enumerate(("low", "high")):
            for k, method in enumerate(("vidplug", "bicubic")):
                curve = [20.0 + 0.1 * i - 0.002 * i * i for i in range(40)] if method == "vidplug" else None
                rows.append({"task": "sr4", "noise": noise, "level": level, "level_value": 0.05 * (j + 1),
                             "method": method, "psnr": 25.0 - j - k, "ssim": 0.8, "warping_error": 1e-3,
                             "es_stop_iteration": 30 if curve else None, "chosen_iteration": 25 if curve else None,
                             "oracle_best_psnr": 21.25 if curve else None, "oracle_best_iteration": 25 if curve else None,
                             "gap": 0.1 * (j + 1) if curve else None, "drop_at_stop": 0.0 if curve else None,
                             "curve": curve, "notes": ["LPIPS unavailable"] if k else []})
    (tmp_path / "cells" / "gaussian-low").mkdir(parents=True)
    (tmp_path / "cells" / "gaussian-low" / "report.html").write_text("<html></html>")
    return {"clip": "bikes", "source": "bikes.mp4", "task": "sr4", "prior": "tiny", "preprocessing": "first 8 frames",
            "es": {"mode": "tuned", "window": 20}, "config": {"task": {"name": "sr4"}}, "versions": {"torch": "2"},
            "device": "cpu", "session_wall_time_s": 3.0, "rows": rows}


def test_robustness_page_tables_curves_and_cell_links(tmp_path):
    from vidplug.evaluation.html_pages import write_robustness_html

    out = _robustness_out(tmp_path)
    write_robustness_html(tmp_path, out, cell_page=lambda r: tmp_path / "cells" / f"{r['noise']}-{r['level']}" /
                          "report.html")
    data = _page_data(tmp_path / "report.html")
    psnr, gap, every = data["tables"]
    assert [c["title"] for c in psnr["columns"]] == ["gaussian low", "gaussian high", "impulse low", "impulse high"]
    assert [r["label"] for r in psnr["rows"]] == ["vidplug", "bicubic"] and psnr["rows"][1]["values"][1] == 23.0
    assert psnr["columns"][0]["better"] == "max" and gap["columns"][0]["better"] == "min"
    assert len(every["rows"]) == 8 and every["rows"][0]["href"] == "cells/gaussian-low/report.html"
    assert every["rows"][2]["href"] is None  # gaussian high has no page
    assert [c["title"] for c in data["charts"]] == ["vidplug: PSNR per iteration (ORACLE), gaussian noise",
                                                    "vidplug: PSNR per iteration (ORACLE), impulse noise"]
    assert [m["x"] for m in data["charts"][0]["markers"]] == [30, 30]
    assert data["warnings"] == ["LPIPS unavailable"] and data["provenance"]["prior"] == "tiny"
