import pytest

from vidplug.solver.chunks import plan_chunks


@pytest.mark.parametrize("n,size,overlap,context", [(20, 8, 2, 0), (20, 8, 2, 3), (7, 8, 2, 0), (33, 5, 4, 3), (1, 4, 0, 3)])
def test_every_frame_written_once_in_order(n, size, overlap, context):
    chunks = plan_chunks(n, size, overlap, context)
    written = [f for c in chunks for f in range(c.start, c.stop)]
    assert written == list(range(n))
    for c in chunks:
        assert c.stop - c.anchor_start <= size
        assert 0 <= c.window_start <= c.anchor_start <= c.start < c.stop <= c.window_stop <= n
        assert c.window_start <= c.data_start and c.data_stop <= c.window_stop


def test_twenty_frames_chunk8_overlap2():
    chunks = plan_chunks(20, 8, 2)
    assert [(c.anchor_start, c.start, c.stop) for c in chunks] == [(0, 0, 8), (6, 8, 14), (12, 14, 20)]


def test_context_frames_and_exact_data_range():
    c0, c1 = plan_chunks(30, 10, 2, context=3)[:2]
    assert (c0.window_start, c0.window_stop, c0.data_start, c0.data_stop) == (0, 13, 0, 10)
    assert (c1.window_start, c1.window_stop) == (5, 21)
    # every observed frame of the window has its whole +-3 support inside it
    assert (c1.data_start, c1.data_stop) == (8, 18)
    assert c1.data_start <= c1.anchor_start and c1.stop <= c1.data_stop


def test_bad_overlap():
    with pytest.raises(ValueError):
        plan_chunks(10, 4, 4)
