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


@pytest.mark.parametrize("n,anchored", [(16, (8, 14, 16)), (9, (1, 8, 9)), (17, (9, 14, 17))])
def test_a_short_last_chunk_anchors_more_frames_to_keep_its_window_full(n, anchored):
    *_, before, last = plan_chunks(n, 8, 2)
    assert (last.anchor_start, last.start, last.stop) == anchored
    assert last.window_len == 8
    assert last.anchor_start >= before.start  # its anchors are frames the previous chunk wrote


def test_the_last_chunk_never_anchors_frames_before_the_previous_chunk_starts():
    *_, before, last = plan_chunks(12, 5, 2)  # 5 frames back from the end would reach the previous chunk's anchors
    assert (before.anchor_start, before.start, before.stop) == (6, 8, 11)
    assert (last.anchor_start, last.start, last.stop) == (8, 11, 12)


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


@pytest.mark.parametrize("context", [0, 3])
def test_split_chunk_with_anchor_seams_equals_planning_at_the_smaller_size(context):
    from vidplug.solver.chunks import split_chunk

    direct = plan_chunks(20, 4, 2, context)
    subs = [s for c in plan_chunks(20, 8, 2, context) for s in split_chunk(c, 4, 2, context, 20, blend=False)]
    key = lambda c: (c.start, c.stop, c.anchor_start, c.window_start, c.window_stop, c.data_start, c.data_stop)  # noqa: E731
    assert [key(c) for c in subs] == [key(c) for c in direct]


def test_split_chunk_keeps_the_chunk_index_and_covers_what_it_keeps():
    from vidplug.solver.chunks import split_chunk

    chunk = plan_chunks(20, 8, 3)[1]  # writes [8, 13), anchored to [5, 8)
    anchored = split_chunk(chunk, 2, 3, 0, 20, blend=False)
    assert [(c.anchor_start, c.start, c.stop) for c in anchored] == [(7, 8, 9), (8, 9, 10), (9, 10, 11), (10, 11, 12),
                                                                     (11, 12, 13)]  # overlap capped at size - 1
    assert {c.index for c in anchored} == {chunk.index}
    blended = split_chunk(chunk, 4, 3, 0, 20, blend=True)  # blend seams keep the overlap too, restored afresh
    assert [(c.anchor_start, c.start, c.stop) for c in blended] == [(5, 5, 9), (6, 9, 10), (7, 10, 11), (8, 11, 12),
                                                                    (9, 12, 13)]


def test_plan_range_arguments_are_checked():
    with pytest.raises(ValueError):
        plan_chunks(10, 4, 0, begin=5, end=5)
    with pytest.raises(ValueError):
        plan_chunks(10, 4, 0, begin=0, end=11)
