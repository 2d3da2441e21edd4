"""Prometheus text, read with prometheus_client's own parser (not regexes): the samples
of one metric, and their sum over the label sets a test cares about."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> Iterator[tuple[Mapping[str, str], float]]:
    """(labels, value) of every sample named `name` (e.g. `apiserver_request_total`)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def total(text: str, name: str,
          where: Callable[[Mapping[str, str]], bool] = lambda _: True) -> float:
    return sum(value for labels, value in samples(text, name) if where(labels))
