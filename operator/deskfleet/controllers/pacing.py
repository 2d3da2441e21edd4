"""How long a re-check over a whole namespace waits: at least its debounce, and at least
DUTY times what the last one cost.

The catalog (every app of the namespace) and a round of policy recounts (every policy,
each over every app) cost in proportion to the namespace. A fixed debounce keeps them
cheap at hospital scale, but at ten thousand apps a catalog render takes most of a
second and a round of recounts several: run every 0.5 s and 5 s through a burst of
arrivals, they would take the whole interpreter from the passes the arrivals need. Paced
by their own cost, they take at most 1/DUTY of it each, and simply run less often as a
namespace grows (the summary lags the burst by DUTY times its cost; once the burst is
over it is exact again).

The cost is the wall time of the passes, which under load is mostly waiting for the
interpreter: so the busier the operator, the rarer the summaries (paced by their CPU
time instead, they ran more often through a burst, and the 1,000-app p99 went from 0.6
to 0.8 s). But no summary waits more than MAX_WAIT: at 10,000 apps a round of 2,000
recounts under load made the next one wait over ten minutes, holding convergence and
every policy's `matchedApps`, which is what its author reads after an edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .fanout import CATALOG, POLICIES, POLICY, Key

DUTY = 10.0
MAX_WAIT = 60.0  # seconds; a debounce longer than this still holds
MAX_NAMESPACES = 4096  # past this many, what was learnt is forgotten at once


@dataclass
class Pacing:
    # (kind, namespace) -> seconds its last pass took (the catalog), or the passes of the
    # round so far took (a policy recount round, summed from its passes).
    _last: dict[tuple[str, str], float] = field(default_factory=dict)
    _round: dict[str, float] = field(default_factory=dict)

    def record(self, key: Key, seconds: float) -> None:
        """A pass of `key` took `seconds`."""
        kind, namespace, _ = key
        if len(self._last) + len(self._round) > MAX_NAMESPACES:
            self._last.clear()
            self._round.clear()
        if kind == CATALOG:
            self._last[CATALOG, namespace] = seconds
        elif kind == POLICY:
            self._round[namespace] = self._round.get(namespace, 0.0) + seconds
        elif kind == POLICIES:  # a new round starts: the last one's cost is known
            self._last[POLICIES, namespace] = self._round.pop(namespace, 0.0)

    def delay(self, key: Key, debounce: float) -> float:
        """How long the re-check `key` waits, its debounce being `debounce`."""
        cost = self._last.get((key[0], key[1]), 0.0)
        return max(debounce, min(DUTY * cost, MAX_WAIT))
