"""benchmarks/bench_solver.py on a tiny random prior: its grid over frame threads and its errors."""

from __future__ import annotations

import json

from benchmarks.bench_solver import main


def test_frame_threads_rows_and_bad_values(tmp_path, capsys):
    args = ["--prior", "tiny-random", "--chunks", "2", "--size", "16x16", "--iters", "1", "--warmup", "0",
            "--frame-threads", "1,2", "--out", str(tmp_path), "--no-append", "--quiet"]
    assert main(args) == 0
    rows = json.loads((tmp_path / "bench_solver.json").read_text())["rows"]
    assert [(r["frames"], r["frame_threads"], r["status"]) for r in rows] == [(2, 1, "ok"), (2, 2, "ok")]
    assert all(r["s_per_iter"] > 0 for r in rows)
    assert "| frame thr |" in capsys.readouterr().out
    assert main([*args[:-4], "--frame-threads", "-1", "--out", str(tmp_path), "--no-append"]) == 2
    assert "--frame-threads >= 0" in capsys.readouterr().err
