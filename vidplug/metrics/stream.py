"""Metrics accumulated over a video streamed chunk by chunk (bounded memory), with seams scored apart."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vidplug.metrics.report import compute_metrics
from vidplug.metrics.warping import WARPING_ERROR_UNIT


class StreamingScores:
    """Per-frame PSNR / SSIM / LPIPS and per-pair warping error accumulated chunk by chunk.

    Warping-error pairs that straddle a chunk boundary (the seams) are also reported apart from those inside
    chunks, so a flickering seam shows up as a number.
    """

    def __init__(self, flow_model):
        self.flow_model = flow_model
        self.per_frame: dict[str, list] = {"psnr": [], "ssim": [], "lpips": []}
        self.pairs: list[float] = []
        self.seam_pairs: list[float] = []
        self.inside_pairs: list[float] = []
        self.lpips_note: str | None = None
        self._prev: tuple[Tensor, Tensor] | None = None  # last restored and reference frame written

    def update(self, restored: Tensor, reference: Tensor) -> None:
        restored, reference = restored.detach().cpu(), reference.detach().cpu()
        first = 0
        if self._prev is not None:  # prepend the previous chunk's last frame so the seam pair is scored
            restored = torch.cat([self._prev[0], restored])
            reference = torch.cat([self._prev[1], reference])
            first = 1
        m = compute_metrics(restored, reference, flow_model=self.flow_model)
        for key in self.per_frame:
            self.per_frame[key].extend(m["per_frame"][key][first:] if m["per_frame"].get(key) else [])
        self.lpips_note = m.get("lpips_note")
        we = m["per_frame"]["warping_error"]
        if first and we:
            self.seam_pairs.append(we[0])
        self.inside_pairs.extend(we[first:])
        self.pairs.extend(we)
        self._prev = (restored[-1:], reference[-1:])

    def summary(self) -> dict[str, Any]:
        def mean(v):
            v = [x for x in v if x is not None]
            return sum(v) / len(v) if v else None

        return {
            "psnr": mean(self.per_frame["psnr"]),
            "ssim": mean(self.per_frame["ssim"]),
            "lpips": mean(self.per_frame["lpips"]) if self.per_frame["lpips"] else None,
            "lpips_note": self.lpips_note,
            "warping_error": mean(self.pairs),
            "warping_error_unit": WARPING_ERROR_UNIT,
            "warping_error_seams": mean(self.seam_pairs),
            "warping_error_inside": mean(self.inside_pairs),
            "flow_model": getattr(self.flow_model, "name", None),
            "frames": len(self.per_frame["psnr"]),
            "per_frame": {**self.per_frame, "warping_error": self.pairs},
        }
