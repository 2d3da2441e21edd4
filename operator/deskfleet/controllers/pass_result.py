"""What a reconcile tells the worker: errors to retry with backoff, or a time to look
again (for decisions that depend on the clock, such as a schedule phase starting)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PassResult:
    errors: list[str] = field(default_factory=list)
    requeue_after: float | None = None
    owner_gone: bool = False  # the object no longer exists although the cache has it
