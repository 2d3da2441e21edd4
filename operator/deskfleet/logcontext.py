"""Every log line written while reconciling an object names it (kind, namespace, name),
without passing the object to every function that logs: the worker sets a context
variable, and a filter on the log handlers copies it onto each record."""

from __future__ import annotations

import contextvars
import logging

CURRENT_OBJECT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "deskfleet_object", default=None)


class ObjectContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = CURRENT_OBJECT.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def install() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(ObjectContextFilter())
