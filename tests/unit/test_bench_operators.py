"""benchmarks/bench_operators.py on tiny operators: its rows, the whole-kernel comparison and its errors."""

from __future__ import annotations

from benchmarks.bench_operators import main, measure


def test_rows_time_each_operator_and_the_whole_blur_kernels():
    rows = measure("temporal+deblur", 3, (32, 32), iters=1)
    assert [r["task"] for r in rows] == ["temporal+deblur", "temporal+deblur: its blur with the whole 61x61 kernels"]
    assert all(r["A"] > 0 and r["A_adjoint"] > 0 for r in rows)
    assert [r["task"] for r in measure("sr4", 2, (16, 16), iters=1)] == ["sr4"]  # no blur, no second row


def test_main_prints_the_table_and_rejects_an_unknown_task(capsys):
    assert main(["--tasks", "inpaint", "--frames", "2", "--size", "16x16", "--iters", "1", "--no-append"]) == 0
    assert "| inpaint |" in capsys.readouterr().out
    assert main(["--tasks", "dehaze", "--no-append"]) == 2
    assert "bench_operators: error: --tasks got 'dehaze'" in capsys.readouterr().err
