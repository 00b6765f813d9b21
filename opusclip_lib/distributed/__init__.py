"""Workers on many processes (and hosts) woken through a broker; the database stays the truth.

The job row, its lease and the reaper keep every promise the single-database worker keeps; a
broker only shortens the wait between an enqueue and a claim:

* :mod:`~opusclip_lib.distributed.brokers`: a taskiq broker for ``redis://``, ``amqp://`` or
  ``nats://`` URLs, and the wake-up message (a job id and a trace carrier, nothing else);
* :mod:`~opusclip_lib.distributed.relay`: publishes the outbox's unsent wake-ups;
* :mod:`~opusclip_lib.distributed.dispatch`: one worker process's loop (wake-ups, a slow
  sweep of the database, drain on stop);
* :mod:`~opusclip_lib.distributed.command`: ``opusclip worker|enqueue|status``.

Needs the ``[distributed]`` extra for a broker; without one, everything here runs on the
database alone, as :mod:`opusclip_lib.workflow.worker` does.
"""
