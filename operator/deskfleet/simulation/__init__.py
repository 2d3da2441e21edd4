"""A discrete-time simulation of hospital days that drives the real scaling core.

Built-in days (`scenarios`) or a hospital's own logon history (`history`) are replayed
against a pool (`pool`) in a simulated cluster (`cluster`); static peak sizing, an
HPA-style utilisation autoscaler and deskfleet's `scaling.decide` (`policies`) are
compared on host-hours, logons that found no free slot, and sessions cut or logged off,
against two clairvoyant references (`bounds`). Wire it into a command line with
`add_arguments` and `run_cli`.
"""

from .cli import add_arguments, run_cli
from .run import SimulationResult, simulate

__all__ = ["SimulationResult", "add_arguments", "run_cli", "simulate"]
