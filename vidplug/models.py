"""The networks a restoration run needs, built once: the diffusion prior and the consistency models (CLIP, flow)
that the config turns on, with the stated fallbacks when their weights are missing."""

from __future__ import annotations

import logging

import torch

from vidplug.config import RestoreConfig
from vidplug.methods import get_method

log = logging.getLogger(__name__)


class Models:
    """Networks built once per run: the prior, and the consistency models the config turns on.

    A consistency model whose weights are missing offline is replaced by its stated fallback (flow: OpenCV DIS) or
    switched off (CLIP) with a warning recorded in ``notes``; the report shows what was used.
    """

    def __init__(self, cfg: RestoreConfig, device: torch.device):
        self.cfg, self.device, self.notes = cfg, device, []
        self.prior = self.clip = self.flow = None
        self._metrics_flow = None  # the warping error's own flow model, when the method's is not one it uses
        method = get_method(cfg.method)
        if method.needs_prior:
            from vidplug.prior import load_prior

            self.prior = load_prior(cfg.prior.name, device=device, prompt=cfg.prior.prompt,
                                    guidance=cfg.prior.guidance)
        cons = cfg.consistency
        if method.uses_consistency and cons.semantic_weight > 0:
            from vidplug.consistency.semantic import load_clip_encoder
            from vidplug.errors import MissingWeightsError

            try:
                self.clip = load_clip_encoder(cons.clip_model, cons.clip_pretrained, device=device)
            except MissingWeightsError as exc:
                msg = f"semantic consistency disabled: {exc}"
                log.warning(msg)
                self.notes.append(msg)
        if method.uses_consistency and cons.pixel_weight > 0:
            self.flow = self._load_flow(cons.flow_model)

    def run_prior(self, cfg: RestoreConfig):
        """The prior with ``cfg``'s settings of the network call (``prior.border_pad``): models may be shared between
        runs with different settings (ablations, the demo's rows), so each run and each chunk sets its own here."""
        self.prior.border_pad = cfg.prior.border_pad
        return self.prior

    def _load_flow(self, name: str):
        from vidplug.consistency.flow import load_flow_model

        return load_flow_model(name, device=self.device)

    def method_flow(self):
        """The flow model the method's multi-frame stages use (``consistency.flow_model``), loaded when first asked
        for by a method without loss terms (flow-coupled least squares)."""
        if self.flow is None:
            self.flow = self._load_flow(self.cfg.consistency.flow_model)
        return self.flow

    def metrics_flow(self):
        """The flow model for the warping-error metric: the method's own when it is one the metric uses (RAFT, DIS),
        else (Farneback) ``auto``'s, so that every method of a table is scored with the same flow."""
        from vidplug.consistency.flow import METRIC_FLOW_MODELS

        name = self.cfg.consistency.flow_model
        if name in METRIC_FLOW_MODELS:
            return self.method_flow()
        if self._metrics_flow is None:
            self._metrics_flow = self._load_flow("auto")
        return self._metrics_flow
