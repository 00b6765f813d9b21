"""Run the fault matrix and print it as a markdown table (or write it into README.md).

    .venv/bin/python scripts/fault_matrix.py              # print the table
    .venv/bin/python scripts/fault_matrix.py --readme     # replace the table in README.md

Runs ``tests/test_fault_matrix*.py`` under pytest with the servers in ``OPUSCLIP_POSTGRES_URL``,
``OPUSCLIP_MYSQL_URL`` and ``OPUSCLIP_REDIS_URL`` (set ``CI=true`` to fail rather than skip a
missing server), then reads the JUnit report: one row per fault (a test function, with its
variant), one column per backend (a test parameter), each cell the outcome and the typed error
the row recorded with ``record_property("error", ...)``. A backend a fault does not apply to
shows as a dash. Nothing in the table is typed by hand.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB", "redis": "Redis"}
START, END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"
_CASE = re.compile(r"test_(?P<fault>\w+?)(?:\[(?P<params>[^\]]*)\])?$")


def run(modules: list[str], extra: list[str]) -> Path:
    report = Path(tempfile.mkdtemp(prefix="fault-matrix-")) / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", *modules, "-q", "-p", "no:cacheprovider",
                    "-o", "junit_family=xunit1", f"--junitxml={report}", *extra], cwd=ROOT,
                   check=False)
    return report


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "**FAILED**"
    skipped = case.find("skipped")
    if skipped is not None:
        return f"skipped ({skipped.get('message', '')[:40]})"
    error = next((p.get("value") for p in case.iter("property") if p.get("name") == "error"),
                 None)
    return f"ok: {error}" if error else "ok"


def table(report: Path) -> str:
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    used: set[str] = set()
    for case in ET.parse(report).iter("testcase"):
        match = _CASE.match(case.get("name", ""))
        if match is None:
            continue
        params = (match["params"] or "").split("-")
        backend = next((p for p in params if p in BACKENDS), "")
        if not backend:
            continue  # a supporting test, not a cell of the matrix
        variant = " ".join(p for p in params if p and p != backend)
        fault = match["fault"].replace("_", " ") + (f" ({variant})" if variant else "")
        cells[fault][backend] = outcome(case)
        used.add(backend)
    columns = [b for b in BACKENDS if b in used]
    lines = ["| fault | " + " | ".join(BACKENDS[b] for b in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for fault, row in cells.items():
        lines.append(f"| {fault} | " + " | ".join(row.get(b, "-") for b in columns) + " |")
    return "\n".join(lines)


def write_readme(markdown: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} block to replace")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{markdown}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args, extra = parser.parse_known_args(argv)
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob(
        "test_fault_matrix*.py"))
    markdown = table(run(modules, extra))
    print(markdown)
    if args.readme:
        write_readme(markdown)
    return 1 if "**FAILED**" in markdown else 0


if __name__ == "__main__":
    sys.exit(main())
