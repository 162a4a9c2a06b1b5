"""Chunk sizing and out-of-memory halving, on CPU (a CUDA OutOfMemoryError can be raised without a GPU)."""

from __future__ import annotations

import gc
import logging

import pytest
import torch

from vidplug.errors import VidplugError
from vidplug.solver.memory import (
    CPU_MAX_CHUNK,
    HOST_PEAK_FACTOR,
    IterationMemory,
    auto_chunk_size,
    chunk_size_for_memory,
    host_chunk_size,
    run_with_oom_halving,
    saved_bytes_per_frame,
)


def _fails_above(limit: int, calls: list[int]):
    def fn(size: int) -> str:
        calls.append(size)
        if size > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {size} GiB\nmore detail")
        return f"done at {size}"

    return fn


def test_oom_halving_ends_at_the_first_size_that_fits_and_logs_each_halving(caplog):
    calls: list[int] = []
    with caplog.at_level(logging.WARNING, logger="vidplug.solver.memory"):
        result, size = run_with_oom_halving(_fails_above(3, calls), 8)
    assert (result, size) == ("done at 2", 2)
    assert calls == [8, 4, 2]
    halvings = [r.getMessage() for r in caplog.records if "out of GPU memory" in r.getMessage()]
    assert len(halvings) == 2
    assert "chunk size 8" in halvings[0] and "chunk size 4" in halvings[0]
    assert "chunk size 4" in halvings[1] and "chunk size 2" in halvings[1]


def test_oom_halving_does_not_retry_when_the_first_call_fits():
    calls: list[int] = []
    assert run_with_oom_halving(_fails_above(3, calls), 3) == ("done at 3", 3)
    assert calls == [3]


def test_oom_halving_stops_at_min_size_with_a_one_line_error():
    calls: list[int] = []
    with pytest.raises(VidplugError) as info:
        run_with_oom_halving(_fails_above(0, calls), 12, min_size=2)
    assert calls == [12, 6, 3, 2]  # 3 // 2 = 1 is below min_size, so min_size itself is the last try
    message = str(info.value)
    assert "\n" not in message and "chunk size 2" in message and "Tried to allocate" in message


def test_oom_halving_lets_other_errors_through():
    def fn(size):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        run_with_oom_halving(fn, 4)


def test_oom_halving_rejects_a_start_below_min_size():
    with pytest.raises(VidplugError):
        run_with_oom_halving(lambda s: s, 1, min_size=2)


def test_auto_chunk_size_on_cpu_is_capped_where_memory_is_plenty(tiny_prior):
    size = auto_chunk_size(tiny_prior, (3, 16, 16), "cpu", num_steps=3, checkpoint=False, autocast="none")
    assert size == CPU_MAX_CHUNK == 16
    assert auto_chunk_size(tiny_prior, (3, 16, 16), torch.device("cpu"), num_steps=2, checkpoint=True,
                           autocast="bf16", max_chunk=4) == 4


def test_saved_bytes_grow_with_the_frame_area_and_the_steps(tiny_prior):
    small = saved_bytes_per_frame(tiny_prior, (3, 16, 16), num_steps=3)
    assert small > 3 * 16 * 16 * 4 * 3  # at least one frame-sized activation per step
    assert saved_bytes_per_frame(tiny_prior, (3, 32, 32), num_steps=3) == pytest.approx(4 * small, rel=0.2)
    assert saved_bytes_per_frame(tiny_prior, (3, 16, 16), num_steps=1) < 0.5 * small


def _live_tensors() -> int:
    gc.collect()
    return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())  # type(): no __class__ lookups


def test_the_saved_bytes_probe_frees_its_graph(tiny_prior):
    """The probe builds R's graph and never runs backward: the tensors it saved must go with it (it leaked the
    whole graph, 221 MiB per call for `tiny` at 128x128, when its pack hook returned the saved tensors as they were)."""
    from vidplug.solver.memory import _probe_saved_bytes

    _probe_saved_bytes(tiny_prior, (3, 16, 16), 3)  # warm-up: anything cached once
    before = _live_tensors()
    for _ in range(3):
        _probe_saved_bytes(tiny_prior, (3, 16, 16), 3)  # the probe itself: saved_bytes_per_frame remembers it
    assert _live_tensors() - before < 5


def test_saved_bytes_are_probed_once_per_prior_shape_steps_and_padding(tiny_prior, monkeypatch):
    from vidplug.solver import memory

    probes = []
    probe = memory._probe_saved_bytes
    monkeypatch.setattr(memory, "_probe_saved_bytes", lambda *a: probes.append(a[1:]) or probe(*a))
    tiny_prior.border_pad = 0
    first = saved_bytes_per_frame(tiny_prior, (3, 20, 20), num_steps=3)
    assert saved_bytes_per_frame(tiny_prior, (3, 20, 20), num_steps=3) == first and len(probes) == 1
    saved_bytes_per_frame(tiny_prior, (3, 20, 24), num_steps=3)
    saved_bytes_per_frame(tiny_prior, (3, 20, 20), num_steps=2)
    tiny_prior.border_pad = 4  # the network then sees a larger frame: probed again, and larger
    assert saved_bytes_per_frame(tiny_prior, (3, 20, 20), num_steps=3) > first
    assert probes == [((3, 20, 20), 3), ((3, 20, 24), 3), ((3, 20, 20), 2), ((3, 20, 20), 3)]


def test_host_chunk_size_is_what_the_available_memory_holds(tiny_prior):
    per_frame = HOST_PEAK_FACTOR * saved_bytes_per_frame(tiny_prior, (3, 16, 16), num_steps=3)
    five = int(5.5 * per_frame / 0.7)  # room for 5.5 frames at the default safety 0.7
    kw = dict(num_steps=3, max_chunk=16)
    assert host_chunk_size(tiny_prior, (3, 16, 16), checkpoint=False, available=five, **kw) == 5
    assert host_chunk_size(tiny_prior, (3, 16, 16), checkpoint=True, available=five, **kw) == 16  # a step at a time
    assert host_chunk_size(tiny_prior, (3, 16, 16), checkpoint=False, available=1, **kw) == 1  # never below 1


def test_auto_chunk_size_rejects_bad_arguments(tiny_prior):
    with pytest.raises(VidplugError):
        auto_chunk_size(tiny_prior, (16, 16), "cpu", num_steps=3, checkpoint=False, autocast="none")
    with pytest.raises(VidplugError):
        auto_chunk_size(tiny_prior, (3, 16, 16), "cpu", num_steps=3, checkpoint=False, autocast="fp8")


@pytest.mark.parametrize(
    ("free", "fixed", "per_frame", "expected"),
    [
        (10_000, 0, 1_000, 8),  # 0.8 * 10000 / 1000
        (10_000, 2_000, 1_000, 6),  # the fixed part comes off first
        (10_000, 0, 100, 32),  # capped at max_chunk
        (1_000, 0, 5_000, 1),  # not even one frame by the estimate: still try 1
    ],
)
def test_chunk_size_for_memory_arithmetic(free, fixed, per_frame, expected):
    usage = IterationMemory(fixed_bytes=fixed, per_frame_bytes=per_frame)
    assert chunk_size_for_memory(free, usage, max_chunk=32, safety=0.8) == expected


def test_chunk_size_for_memory_rejects_bad_safety():
    with pytest.raises(VidplugError):
        chunk_size_for_memory(1000, IterationMemory(0, 10), safety=0.0)


def test_fit_iteration_memory_slope_and_floors():
    from vidplug.solver.memory import fit_iteration_memory

    # plain: R's activations grow with every frame, so all of the 2-frame peak counts as per-frame (safe)
    usage = fit_iteration_memory((1, 2), [150, 200])
    assert (usage.fixed_bytes, usage.per_frame_bytes) == (0, 100)
    usage = fit_iteration_memory((1, 2), [150, 400])  # a steeper measured slope wins over the floor
    assert (usage.fixed_bytes, usage.per_frame_bytes) == (0, 250)
    # micro-batching m = 4: R's activations are a fixed cost; the per-frame state is small but never below the floor
    usage = fit_iteration_memory((4, 8), [1000, 1040], min_per_frame=6)
    assert (usage.fixed_bytes, usage.per_frame_bytes) == (960, 10)
    usage = fit_iteration_memory((4, 8), [1000, 1000], min_per_frame=6)
    assert (usage.fixed_bytes, usage.per_frame_bytes) == (952, 6)
