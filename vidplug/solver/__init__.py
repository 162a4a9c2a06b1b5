"""DMPlug latent optimisation (:func:`solve`), ES-WMV early stopping, seed parametrisations, loss terms, chunks."""

from vidplug.solver.config import SolverConfig
from vidplug.solver.dmplug import solve
from vidplug.solver.early_stop import ESWMV
from vidplug.solver.result import SolveResult
from vidplug.solver.seeds import SeedParam, make_seeds
from vidplug.solver.terms import DataFidelity, LossTerm

__all__ = ["ESWMV", "DataFidelity", "LossTerm", "SeedParam", "SolveResult", "SolverConfig", "make_seeds", "solve"]
