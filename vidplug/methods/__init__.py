"""Restoration methods by name (``method:`` in a config): each is a :class:`~vidplug.methods.base.ChunkSolver`.

One registry, no string checks elsewhere: the pipeline asks it for the chunk solver, the networks it needs
(``needs_prior``, ``uses_consistency``) come from the method itself. A new method is one entry here and one name in
:data:`vidplug.config.run.Method`.
"""

from __future__ import annotations

import typing

from vidplug.config.run import Method
from vidplug.errors import VidplugError
from vidplug.methods.base import ChunkOutput, ChunkSolver
from vidplug.methods.classical import FlowLeastSquares, LeastSquares, Telea
from vidplug.methods.diffpir import DiffPIRMethod, DiffPIRSettings
from vidplug.methods.dmplug import DMPlugMethod
from vidplug.methods.pseudo_inverse import PseudoInverse

METHODS: dict[str, ChunkSolver] = {
    "dmplug": DMPlugMethod(),
    "bicubic": PseudoInverse(),
    "diffpir": DiffPIRMethod(DiffPIRSettings()),
    "least-squares": LeastSquares(),
    "flow-least-squares": FlowLeastSquares(),
    "telea": Telea(),
}
assert tuple(METHODS) == typing.get_args(Method)  # noqa: S101 (the config's Literal lists the registry's names)


def get_method(name: str) -> ChunkSolver:
    """The chunk solver registered as ``name``; a one-line error naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise VidplugError(f"unknown method {name!r}; use one of: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "ChunkOutput", "ChunkSolver", "DMPlugMethod", "DiffPIRMethod", "DiffPIRSettings", "FlowLeastSquares",
           "LeastSquares", "Telea", "PseudoInverse", "get_method"]
