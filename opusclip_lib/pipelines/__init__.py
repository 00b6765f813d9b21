"""Generic concurrency helpers: map with or without a limit, queue pipelines, fan-out.

The async primer (``notebooks/00_async_primer.ipynb``) explains each one; the API and database
notebooks reuse them. All of them cancel and await their tasks before returning or raising,
so nothing they start outlives the call.
"""

from opusclip_lib.pipelines.fanout import fan_out
from opusclip_lib.pipelines.gauge import InFlight
from opusclip_lib.pipelines.mapping import map_bounded, map_gather, map_sequential, map_task_group
from opusclip_lib.pipelines.recording import TASK_KIND, call_recorded
from opusclip_lib.pipelines.scope import background, task_scope
from opusclip_lib.pipelines.stages import Stage, run_pipeline

__all__ = [
    "TASK_KIND",
    "InFlight",
    "Stage",
    "background",
    "call_recorded",
    "fan_out",
    "map_bounded",
    "map_gather",
    "map_sequential",
    "map_task_group",
    "run_pipeline",
    "task_scope",
]
