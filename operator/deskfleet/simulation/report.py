"""The simulation's results as Markdown: one run's page, or a summary of many runs
(scenarios x seeds), each with the acceptance targets deskfleet is judged on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from .run import PolicyResult, SimulationResult

CLAIRVOYANT = "clairvoyant lower bound (sessions moved at will)"
NO_MIGRATION = "clairvoyant placement without migration"
WAIT_SLACK_SECONDS = 60  # the longest wait may exceed a host's start-up by this much
TARGET_PLAIN = 1.45  # host-hours over the bound, without forced logoff
TARGET_FORCED = 1.20  # ... with forced logoff after a drain grace


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def ratio(result: SimulationResult, hours: float) -> float:
    return hours / result.clairvoyant_host_hours if result.clairvoyant_host_hours else 0.0


def deskfleet_runs(result: SimulationResult) -> list[PolicyResult]:
    return [p for p in result.policies if p.name.startswith("deskfleet")]


def table(result: SimulationResult) -> str:
    rows = ["| policy | host-hours | x bound | x no-migration | logons that waited | "
            "p95 wait | max wait | cut without notice | logged off with notice | peak hosts |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {CLAIRVOYANT} | {result.clairvoyant_host_hours:,.1f} | 1.00 | "
            f"{result.clairvoyant_host_hours / result.no_migration_host_hours:.2f} "
            "| - | - | - | - | - | - |",
            f"| {NO_MIGRATION} | {result.no_migration_host_hours:,.1f} | "
            f"{ratio(result, result.no_migration_host_hours):.2f} | 1.00 | - | - | - | - | - "
            "| - |"]
    for p in result.policies:
        waited = p.waited > 0
        cut = f"{p.cut:,}" + (f" (+{p.cut_after_notice:,} after notice)"
                              if p.cut_after_notice else "")
        rows.append(
            f"| {p.name} | {p.host_hours:,.1f} | {ratio(result, p.host_hours):.2f} | "
            f"{p.host_hours / result.no_migration_host_hours:.2f} | {p.waited:,} | "
            f"{duration(p.wait_p95) if waited else '-'} | "
            f"{duration(p.wait_max) if waited else '-'} | {cut} | {p.logged_off:,} | "
            f"{p.peak_hosts:,} |")
    return "\n".join(rows)


REFERENCE = "deskfleet, no image change (reference)"


def rollout_table(result: SimulationResult) -> str:
    """A day with an image change: what each rollout cost and what users got."""
    reference = next((p for p in result.policies if p.name == REFERENCE), None)
    rows = ["| policy | host-hours | vs no image change | sessions cut without notice | "
            "logged off with notice | logons that waited | max wait | last old host gone | "
            "peak hosts |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in result.policies:
        extra = (f"{p.host_hours - reference.host_hours:+,.1f}"
                 if reference is not None and p is not reference else "-")
        gone = ("-" if p is reference else _gone(result, p))
        cut = f"{p.cut:,}" + (f" (+{p.cut_after_notice:,} after notice)"
                              if p.cut_after_notice else "")
        rows.append(
            f"| {p.name} | {p.host_hours:,.1f} | {extra} | {cut} | {p.logged_off:,} | "
            f"{p.waited:,} | {duration(p.wait_max) if p.waited else '-'} | {gone} | "
            f"{p.peak_hosts:,} |")
    return "\n".join(rows)


def _gone(result: SimulationResult, p: PolicyResult) -> str:
    if p.outdated_until is None:
        return "-"
    if p.outdated_until >= result.workload.day_end:
        return "after midnight"
    return f"{p.outdated_until.astimezone(result.workload.tz):%H:%M}"


def results_table(result: SimulationResult) -> str:
    return rollout_table(result) if result.workload.image_changes else table(result)


def rollout_checks(result: SimulationResult) -> list[tuple[bool, str]]:
    """deskfleet's rollouts: no session cut without notice, no logon waiting longer than
    a host's start-up + 1 min (without a deadline: than on the same day with no image
    change), and with a deadline, the old hosts gone by the change + a start-up (the
    switch to new hosts) + the deadline + logoffTimeout + a minute."""
    startup = (result.options.startup + result.options.startup_spread).total_seconds()
    change = min(result.workload.image_changes)
    reference = next((p for p in result.policies if p.name == REFERENCE), None)
    out = []
    for p in deskfleet_runs(result):
        if p.name == REFERENCE:
            continue
        out += [(p.cut == 0, f"{p.name}: no session cut without notice (cut: {p.cut})"),
                (p.wait_max <= startup + WAIT_SLACK_SECONDS,
                 f"{p.name}: longest logon wait within a host's start-up + 1 min "
                 f"(longest: {duration(p.wait_max)})")]
        if p.update_deadline is None and reference is not None:
            out.append((p.wait_max <= reference.wait_max,
                        f"{p.name}: no logon waits longer than without the image change "
                        f"({duration(p.wait_max)}; without: {duration(reference.wait_max)})"))
        if p.update_deadline is not None:
            by = change + timedelta(seconds=startup + p.update_deadline + p.logoff_timeout
                                    + WAIT_SLACK_SECONDS)
            gone = p.outdated_until
            out.append((gone is not None and gone <= by,
                        f"{p.name}: the last old host gone by "
                        f"{by.astimezone(result.workload.tz):%H:%M} (gone: {_gone(result, p)})"))
    return out


def checks(result: SimulationResult) -> list[tuple[bool, str]]:
    """Each deskfleet policy against the targets, with the figure measured."""
    if result.workload.image_changes:
        return rollout_checks(result)
    startup = result.options.startup + result.options.startup_spread
    longest = startup.total_seconds() + WAIT_SLACK_SECONDS
    out = []
    for p in deskfleet_runs(result):
        forced = p.logged_off > 0 or "forced logoff" in p.name
        target = TARGET_FORCED if forced else TARGET_PLAIN
        out += [
            (p.cut == 0, f"{p.name}: no session cut without notice (cut: {p.cut})"),
            (p.wait_max <= longest,
             f"{p.name}: longest logon wait within a host's start-up + 1 min, "
             f"{duration(longest)} (longest: {duration(p.wait_max)})"),
            (ratio(result, p.host_hours) <= target,
             f"{p.name}: host-hours at most {target:.2f}x the bound "
             f"({ratio(result, p.host_hours):.3f}x)"),
        ]
        if forced:
            notice = ("-" if p.shortest_notice is None else duration(p.shortest_notice))
            out.append((True, f"{p.name}: {p.logged_off:,} sessions logged off after a "
                              f"notice (shortest notice {notice})"))
    return out


def _describe_run(result: SimulationResult, command: str) -> str:
    w, o = result.workload, result.options
    when = w.day_start.astimezone(w.tz)
    who = f"{w.staff:,} staff, seed {w.seed}: " if w.staff else ""
    return (f"{w.title.capitalize()}, {when:%A %d %B %Y} ({when.tzname()}), {who}"
            f"{result.logons:,} logons, peak {result.peak_sessions:,} concurrent sessions. "
            f"Hosts of {result.per_host} slots, ready {duration(o.startup.total_seconds())}"
            + (f" +- {duration(o.startup_spread.total_seconds())}" if o.startup_spread else "")
            + f" after the replica increase; logons placed {_placement(o.placement)}; "
            f"agents' reports seen {duration(o.report_lag.total_seconds())} late; every "
            f"autoscaler runs every {int(o.step.total_seconds())} s. Generated by `{command}`.")


def _placement(placement: str) -> str:
    return ("at random among the hosts accepting sessions (as a Service does)"
            if placement == "random" else "on the least-loaded accepting host")


def markdown(result: SimulationResult, command: str,
             plot_name: str | None = "simulation.png") -> str:
    lines = [f"# Simulated: {result.workload.title}", "", _describe_run(result, command), "",
             results_table(result), ""]
    if plot_name:
        lines += [f"![Concurrent sessions and each policy's capacity]({plot_name})", ""]
    lines += ["## Acceptance targets for deskfleet", ""]
    lines += [f"- {'met' if ok else '**missed**'}: {text}" for ok, text in checks(result)]
    lines += ["", "## Settings", ""]
    for p in result.policies:
        lines += [f"**{p.name}**", "", *(f"- {text}" for text in p.settings), ""]
    lines += _method(result)
    return "\n".join(lines) + "\n"


def _method(result: SimulationResult) -> list[str]:
    reconnects = ", ".join(f"{p.name} {p.reconnects:,}" for p in result.policies)
    return [
        f"**{CLAIRVOYANT}**: at every moment ceil(concurrent sessions / "
        f"{result.per_host}) hosts, with no start-up time; integrated exactly. No pool can "
        "do better.",
        "",
        f"**{NO_MIGRATION}**: knowing every session's end, each logon goes to the open host "
        "whose busy time it extends least (best fit on end times); hosts start instantly "
        "and go when their last session ends. A schedule that exists without moving "
        "sessions: what knowing how long each session lasts would be worth.",
        "",
        "## How it is measured",
        "",
        "- Host-hours count every host from the replica increase that created it until it "
        "is deleted, including hosts starting up and draining, over the measured window.",
        "- A session ends disconnected for a share of users: the host keeps it (and its "
        "slot) for the rest of its length. Hosts that report their sessions count it; TCP "
        "counting does not see it.",
        "- A logon that finds no accepting host with a free slot waits, first come first "
        "served; the launch rate, the users waiting and the sessions ending on serving "
        "hosts are deskfleet's demand signal, as the portal and the agents would report "
        "them.",
        "- A user whose session is cut, or logged off after the notice, while still "
        "connected logs on again at once for the rest of their work; those reconnects are "
        f"placed like any logon and are in the wait figures (reconnects: {reconnects}).",
        "- Wait percentiles are over the logons that waited.",
    ]


def rollout_summary(results: Sequence[SimulationResult]) -> list[str]:
    """Days with an image change: one row per run and policy."""
    rows = ["| seed | policy | host-hours | vs no image change | sessions cut without "
            "notice | logged off with notice | logons that waited | max wait | last old "
            "host gone |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        reference = next((p for p in r.policies if p.name == REFERENCE), None)
        for p in r.policies:
            extra = (f"{p.host_hours - reference.host_hours:+,.1f}"
                     if reference is not None and p is not reference else "-")
            rows.append(f"| {r.seed} | {p.name} | {p.host_hours:,.1f} | {extra} | {p.cut:,} | "
                        f"{p.logged_off:,} | {p.waited:,} | "
                        f"{duration(p.wait_max) if p.waited else '-'} | "
                        f"{'-' if p is reference else _gone(r, p)} |")
    return rows


def summary(results: Sequence[SimulationResult], command: str) -> str:
    """One row per run, and the targets over all of them."""
    if results and all(r.workload.image_changes for r in results):
        return _summary(rollout_summary(results), results, command)
    forced = next((p.name for r in results for p in deskfleet_runs(r)
                   if "forced logoff" in p.name), None)
    head = ("| scenario | seed | logons | bound (host-h) | no-migration placement, x bound | "
            "deskfleet, x bound | "
            + (f"{forced}, x bound | logged off with notice | " if forced else "")
            + "logons that waited | longest wait | cut without notice |")
    rows = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    for r in results:
        plain = r.policy("deskfleet")
        runs = deskfleet_runs(r)
        with_grace = next((p for p in runs if p.name == forced), None)
        cells = [r.scenario or r.workload.title, str(r.seed), f"{r.logons:,}",
                 f"{r.clairvoyant_host_hours:,.0f}",
                 f"{ratio(r, r.no_migration_host_hours):.3f}",
                 f"{ratio(r, plain.host_hours):.3f}"]
        if with_grace is not None:
            cells += [f"{ratio(r, with_grace.host_hours):.3f}", f"{with_grace.logged_off:,}"]
        cells += [" / ".join(f"{p.waited:,}" for p in runs),
                  " / ".join(duration(p.wait_max) for p in runs),
                  " / ".join(f"{p.cut:,}" for p in runs)]
        rows.append("| " + " | ".join(cells) + " |")
    return _summary(rows, results, command)


def _summary(rows: list[str], results: Sequence[SimulationResult], command: str) -> str:
    all_checks = [(ok, f"{r.scenario or r.workload.title}, seed {r.seed}: {text}")
                  for r in results for ok, text in checks(r)]
    missed = [text for ok, text in all_checks if not ok]
    verdict = [f"All {len(all_checks)} checks over {len(results)} runs met."] if not missed \
        else [f"{len(missed)} of {len(all_checks)} checks **missed**:", "",
              *(f"- {text}" for text in missed)]
    return "\n".join([f"Generated by `{command}`.", "", *rows, "", *verdict]) + "\n"
