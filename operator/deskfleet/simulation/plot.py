"""The simulation's PNG: sessions, the bound and each policy's hosts over the window.

matplotlib is an optional extra (`pip install 'deskfleet[plot]'`): the operator image
does not carry it, and `deskfleet simulate` still writes its tables without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .run import SimulationResult

EXTRA = "plot"
COLOURS = {"static peak sizing": "#7f7f7f", "HPA-style target tracking": "#d62728",
           "deskfleet": "#1f77b4",
           # the patch day's (simulation/rollout.py)
           "deskfleet, no image change (reference)": "#7f7f7f",
           "plain Deployment rollout (maxSurge 25%)": "#d62728",
           "deskfleet, update deadline 2h": "#2ca02c", "deskfleet, update deadline 8h": "#9467bd",
           "deskfleet, urgent (15m notice)": "#ff7f0e"}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed; the message says what to install."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise PlotUnavailable(
            f"matplotlib is not installed, so no PNG was drawn; install the '{EXTRA}' "
            f"extra (pip install 'deskfleet[{EXTRA}]'), or pass --no-plot") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(result: SimulationResult, path: Path) -> None:
    plt = _pyplot()
    import matplotlib.dates as mdates

    tz = result.workload.tz
    fig, ax = plt.subplots(figsize=(13, 6.5), dpi=110)
    times = [float(mdates.date2num(t)) for t in result.times]
    per_host = result.per_host
    ax.fill_between(times, result.sessions, step="post", color="#bbbbbb", alpha=0.7,
                    label=f"concurrent sessions (peak {result.peak_sessions:,})")
    ax.step(times, result.clairvoyant_slots, where="post", color="black", lw=1, ls="--",
            label=f"clairvoyant lower bound ({result.clairvoyant_host_hours:,.0f} host-h)")
    for p in result.policies:
        colour = COLOURS.get(p.name)
        dashed = "forced logoff" in p.name or "reference" in p.name
        ax.step(times, p.slots, where="post", lw=2, color=colour or "#2ca02c",
                ls="--" if dashed else "-",
                label=f"{p.name}: all hosts ({p.host_hours:,.0f} host-h, {p.cut:,} cut)")
        if p.name == "deskfleet":
            ax.step(times, p.serving, where="post", lw=1.2, ls=":", color=colour,
                    label="deskfleet: ready hosts taking logons (the rest start or drain)")
    days = max(1, round((times[-1] - times[0]) if len(times) > 1 else 1))
    ax.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 2 * days), tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if days == 1 else "%a %H:%M",
                                                      tz=tz))
    if len(times) > 1:
        ax.set_xlim(times[0], times[0] + (times[1] - times[0]) * len(times))
    highest = max([result.peak_sessions, *result.clairvoyant_slots,
                   *(max(p.slots, default=0) for p in result.policies)])
    ax.set_ylim(0, max(highest, 1) * 1.3)  # room for the legend above the curves
    ax.set_xlabel(f"local time ({tz})")
    ax.set_ylabel(f"session slots (hosts x {per_host}) / sessions")
    w = result.workload
    who = f"{w.staff:,} staff, seed {w.seed}, " if w.staff else ""
    ax.set_title(f"Simulated: {w.title}, {w.day_start.astimezone(tz):%a %d %b %Y}: {who}"
                 f"host start-up {int(result.options.startup.total_seconds() // 60)} min")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
