"""A discrete-time simulation of a hospital day that drives the real scaling core.

It compares static peak sizing, an HPA-style utilisation autoscaler and deskfleet's
`scaling.decide` on host-hours, logons that found no free slot, and sessions cut by
scale-in, against the clairvoyant lower bound on host-hours. Wire it into a command
line with `add_arguments` and `run_cli`.
"""

from .cli import add_arguments, main, run_cli
from .run import SimulationResult, simulate

__all__ = ["SimulationResult", "add_arguments", "main", "run_cli", "simulate"]
