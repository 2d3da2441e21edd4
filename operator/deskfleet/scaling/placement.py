"""Which hosts take new sessions: the operator labels them `deskfleet.io/accepting` and
the pool's Service routes only to those. Pure.

Breadth-first: every serving host with a free slot accepts; logons spread. Depth-first:
only as few hosts as hold the free slots the pool keeps, the fullest first; the others
take nothing new, so their sessions end one by one and they can be retired sooner. That
matters while the pool shrinks — a host is removed only once its *last* session has
ended — and costs nothing then, as the surplus hosts are free anyway. `auto` is
depth-first while the pool has more hosts than it needs, breadth-first otherwise (a
growing pool spreads its logons, so no host fills while others idle).
"""

from __future__ import annotations

from collections.abc import Sequence

from .hosts import Host, accepts


def accepting_hosts(serving: Sequence[Host], per_host: int, mode: str, surplus: bool,
                    keep_free: int) -> tuple[str, ...]:
    candidates = [h for h in serving if accepts(h, per_host)]
    depth_first = mode == "depthFirst" or (mode == "auto" and surplus)
    if not depth_first:
        return tuple(sorted(h.name for h in candidates))
    # Ready hosts by most sessions first (then oldest); hosts still starting last, as
    # they take sessions only once ready. Unknown counts are taken as empty.
    order = sorted(candidates, key=lambda h: (not h.ready, -(h.sessions or 0),
                                              h.created_at, h.name))
    chosen: list[str] = []
    free = 0
    for host in order:
        if chosen and free >= max(keep_free, 1):
            break
        chosen.append(host.name)
        free += per_host - (host.sessions or 0)
    return tuple(sorted(chosen))
