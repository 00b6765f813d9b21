"""Matplotlib charts of what the code measured. One module per area; shared pieces here."""

from opusclip_lib.charts.timeline import timeline

__all__ = ["timeline"]
