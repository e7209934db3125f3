"""Experiments: the framework (runner, report, plots) and one registered module per paper
table or figure; ``compactnn reproduce NAME`` runs one."""

from . import (  # noqa: F401  (importing registers, in this order)
    circulant_cnn,
    compress_mlp,
    compression,
    factorization,
    init_variance,
    lowcost_cnn,
    nonlinearity,
    prodsumnet,
    scattering,
    size_vs_accuracy,
    synthetic_regression,
    youtube8m,
)
from .runner import Experiment, register_experiment, run_experiment

__all__ = ["Experiment", "register_experiment", "run_experiment"]
