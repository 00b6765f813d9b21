"""What every benchmark does with its results: the JSON file with the settings it ran with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def save_json(args: argparse.Namespace, path: Path, **results: Any) -> None:
    """``{"settings": <the command line but --json/--plot>, **results}`` into ``path``."""
    settings = {key: (str(value) if isinstance(value, Path) else value)
                for key, value in vars(args).items() if key not in {"json", "plot"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, **results}, indent=2))
