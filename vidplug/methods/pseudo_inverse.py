"""The ``bicubic`` baseline: the operator's cheap pseudo-inverse ``A_dagger(y)`` (bicubic upsampling for SR)."""

from __future__ import annotations

from vidplug.methods.base import ChunkOutput


class PseudoInverse:
    """Restores a chunk as ``op.A_dagger(y)`` clamped to [0, 1]: no prior, no optimisation."""

    name = "bicubic"
    needs_prior = False
    uses_consistency = False

    def __call__(self, cfg, models, chunk, y, op, anchors, reference, progress: bool = True) -> ChunkOutput:
        return op.A_dagger(y).clamp(0, 1), {"method": self.name}, None
