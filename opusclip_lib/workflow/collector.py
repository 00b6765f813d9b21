"""The garbage collector's settings for a worker process.

A worker keeps many objects alive for every call in flight (tasks, coroutines, responses, and
with tracing on, finished spans waiting in the batch processor's queue). CPython starts a
young-generation collection every 700 net allocations by default, and each one walks
everything still young: with a hundred calls in flight, that is most of what the worker holds,
walked over and over. Two settings, as long-running services commonly use them:

* ``gc.freeze()`` after start-up moves what start-up made (modules, pools, clients) out of
  every later collection;
* a larger first threshold makes young collections rarer, for a little more memory between
  them (``opusclip bench scale`` checks that memory stays flat).

With tracing on, the spans waiting for export are what grows the young generation, so these
settings are what keeps tracing cheap in a busy worker; ``opusclip bench observability`` runs
both of its sides under them, as a worker would.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 7_000


@contextmanager
def worker_collector(young_threshold: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """The worker's collector settings for the block; the previous ones are restored after
    (tests and notebooks run workers inside their own process)."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
