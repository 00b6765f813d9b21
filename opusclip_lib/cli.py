"""``opusclip`` command line: ``opusclip run`` executes the notebooks, ``opusclip clip SOURCE``
cuts a video into captioned clips, ``opusclip bench NAME`` measures, ``opusclip dashboard``
serves the live board of the job queue; ``opusclip worker``, ``enqueue`` and ``status`` run and
watch distributed workers (:mod:`opusclip_lib.distributed`).

Each benchmark lives in ``opusclip_lib.bench.<name>`` and exposes ``main(argv) -> int``; the CLI
only dispatches, so adding a benchmark never touches this file. ``run`` and ``bench`` are tooling:
they are imported when asked for, and a core-only install says which extra to add.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

TOOLING_EXTRAS = {"run": "notebooks", "bench": "bench", "dashboard": "dashboard",
                  "worker": "distributed", "enqueue": "distributed", "status": "distributed"}
"""The optional extra (``pip install "opusclip-lib[EXTRA]"``) each tooling command needs."""


def _tooling(command: str, module: str) -> ModuleType:
    """``module`` for ``command``, or exit naming the extra that brings its dependencies."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.partition(".")[0] == "opusclip_lib":
            raise
        extra = TOOLING_EXTRAS[command]
        raise SystemExit(f"opusclip {command} needs {exc.name}, which comes with the [{extra}] "
                         f"extra: pip install \"opusclip-lib[{extra}]\"") from exc


def _benchmarks() -> list[str]:
    bench = importlib.import_module("opusclip_lib.bench")
    modules = pkgutil.iter_modules(bench.__path__)
    return sorted(m.name for m in modules if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="opusclip", description=__doc__)
    commands = ["run", "clip", "bench", "dashboard", "worker", "enqueue", "status"]
    parser.add_argument("command", choices=commands, help="what to do")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the command")
    parsed = parser.parse_args(args[:1])
    rest = args[1:]
    if parsed.command == "run":
        return int(_tooling("run", "opusclip_lib.runner").main(rest))
    if parsed.command == "dashboard":
        return int(_tooling("dashboard", "opusclip_lib.dashboard.serve").main(rest))
    if parsed.command == "clip":
        from opusclip_lib import clip

        return clip.main(rest)
    if parsed.command in ("worker", "enqueue", "status"):
        command = _tooling(parsed.command, "opusclip_lib.distributed.command")
        return int(command.main(parsed.command, rest))
    names = _benchmarks()
    if not rest or rest[0] not in names:
        parser.error(f"bench needs one of: {', '.join(names) or '(none yet)'}")
    module = _tooling("bench", f"opusclip_lib.bench.{rest[0]}")
    return int(module.main(rest[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
