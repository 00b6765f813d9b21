"""Give every notebook its navigation: a prerequisites cell first, a recap cell last, a starter
cell after the exercises, and write the contents notebook ``notebooks/index.ipynb``.

The cells this script writes carry a metadata tag (``nav-header``, ``nav-footer``,
``exercise-starter``); it rewrites only those, so running it twice changes nothing and the
lessons' own cells are never touched. Prerequisites and recap questions come from
``notebooks/recap.yml``; a notebook without an entry there is an error.

    .venv/bin/python scripts/notebook_nav.py          # rewrite the owned cells
    .venv/bin/python scripts/notebook_nav.py --check  # exit 1 if any notebook is out of date
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from urllib.parse import quote

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
RECAP_FILE = NOTEBOOK_DIR / "recap.yml"
CONTENTS = "index.ipynb"
# The repository Binder builds from `environment.yml`; forks change it here and in README.
BINDER_REPO = "opusclip/video-opusclip"
BINDER_BRANCH = "main"
BADGE = "binder-badge.svg"  # committed beside the notebooks, so every page renders offline
HEADER, FOOTER, STARTER = "nav-header", "nav-footer", "exercise-starter"
OWNED = (HEADER, FOOTER, STARTER)


def lessons() -> list[Path]:
    """The numbered notebooks in reading order (the same rule as ``opusclip run``)."""
    return sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if p.name[:2].isdigit())


def title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "tags" not in cell.metadata:
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def binder_url(path: str) -> str:
    return (f"https://mybinder.org/v2/gh/{BINDER_REPO}/{BINDER_BRANCH}"
            f"?labpath={quote(path, safe='')}")


def binder_badge(path: str) -> str:
    return f"[![Launch on Binder]({BADGE})]({binder_url(path)})"


def link(stem: str, titles: dict[str, str]) -> str:
    return f"[{titles[stem]}]({stem}.ipynb)"


def header_source(stem: str, entry: dict, titles: dict[str, str]) -> str:
    after = entry.get("after") or []
    read_first = ", ".join(link(s, titles) for s in after) if after else "nothing: start here"
    return (f"[Contents]({CONTENTS}) &middot; {binder_badge(f'notebooks/{stem}.ipynb')}\n\n"
            f"**Prerequisites.** Read first: {read_first}. You should know: {entry['know']}")


def footer_source(stem: str, entry: dict, order: list[str], titles: dict[str, str]) -> str:
    position = order.index(stem)
    following = link(order[position + 1], titles) if position + 1 < len(order) else "the end"
    steps = [f"Previous: {link(order[position - 1], titles)}"] if position else []
    steps += [f"[Contents]({CONTENTS})", f"Next: {following}"]
    questions = "\n".join(f"{n}. {q}" for n, q in enumerate(entry["questions"], 1))
    return (f"## Recap\n\nAnswer these without looking back; then check in the notebook.\n\n"
            f"{questions}\n\n---\n\n" + " &middot; ".join(steps))


def _parameter(arg: ast.arg, default: ast.expr | None) -> str:
    """``arg`` without its annotation; a literal default kept, any other shown as None."""
    if default is None:
        return arg.arg
    return f"{arg.arg}={ast.unparse(default) if isinstance(default, ast.Constant) else None}"


def _stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The solution's signature as a comment, and a stub taking the same parameters (without
    annotations, which may name types the notebook has not imported)."""
    signature = ast.unparse(function).splitlines()[0].rstrip(":")
    for node in function.decorator_list:
        signature = signature.removeprefix(f"@{ast.unparse(node)}")
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = [_parameter(a, d) for a, d in zip(positional, defaults, strict=True)]
    if args.vararg:
        params.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        params.append("*")
    params += [_parameter(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        params.append(f"**{args.kwarg.arg}")
    prefix = "async def" if isinstance(function, ast.AsyncFunctionDef) else "def"
    return (f"# solution's signature: {signature}\n"
            f"{prefix} {function.name}({', '.join(params)}):\n    ...  # your code here\n")


def starter_source(stem: str, exercises: str) -> str | None:
    """One stub per exercise function of the solutions file (named ``exercise_*``, or named in
    the exercises cell as ``name(``), or None if there is none."""
    solutions = NOTEBOOK_DIR / "solutions" / f"{stem}_solutions.py"
    if not solutions.exists():
        return None
    tree = ast.parse(solutions.read_text(encoding="utf-8"))
    functions = [node for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 and (node.name.startswith("exercise_") or f"`{node.name}(" in exercises)]
    if not functions:
        return None
    stubs = "\n\n".join(_stub(f) for f in functions)
    return (f"# Your code here. One function per exercise, named as in "
            f"solutions/{stem}_solutions.py;\n# await yours in a new cell.\n\n{stubs}")


def _tagged(cell: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cell.metadata["tags"] = [tag]
    cell.metadata["editable"] = True
    return cell


def _owned(cell: nbformat.NotebookNode) -> bool:
    return any(tag in OWNED for tag in cell.metadata.get("tags", []))


def _exercises_index(cells: list[nbformat.NotebookNode]) -> int | None:
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and any(
                line.strip() == "## Exercises" for line in cell.source.splitlines()):
            return index
    return None


def _reuse(old: list[nbformat.NotebookNode], tag: str, cell_type: str, source: str):
    """The existing owned cell with ``tag`` (keeping its id), its source replaced; else a new
    one."""
    for cell in old:
        if tag in cell.metadata.get("tags", []) and cell.cell_type == cell_type:
            cell.source = source
            return cell
    maker = new_markdown_cell if cell_type == "markdown" else new_code_cell
    return _tagged(maker(source), tag)


def with_navigation(notebook: nbformat.NotebookNode, stem: str, entry: dict,
                    order: list[str], titles: dict[str, str]) -> nbformat.NotebookNode:
    owned = [c for c in notebook.cells if _owned(c)]
    cells = [c for c in notebook.cells if not _owned(c)]
    exercises = _exercises_index(cells)
    starter = None if exercises is None else starter_source(stem, cells[exercises].source)
    if starter is not None:
        cell = _reuse(owned, STARTER, "code", starter)
        cell.outputs, cell.execution_count = [], None
        cells.insert(exercises + 1, cell)
    cells.insert(0, _reuse(owned, HEADER, "markdown", header_source(stem, entry, titles)))
    cells.append(_reuse(owned, FOOTER, "markdown",
                        footer_source(stem, entry, order, titles)))
    notebook.cells = cells
    return notebook


def contents(order: list[str], titles: dict[str, str]) -> nbformat.NotebookNode:
    parts = {"0": "Start here", "1": "Databases", "2": "HTTP APIs", "3": "Putting it together"}
    lines = ["# Video-OpusClip: contents", "",
             "Async Python for real work, on databases and HTTP APIs, through a video-clipping "
             "app. Read the notebooks in this order; each one opens with what to read first "
             "and ends with recap questions and a link to the next.", "",
             binder_badge(f"notebooks/{CONTENTS}")]
    section = None
    for stem in order:
        if stem[0] != section:
            section = stem[0]
            lines += ["", f"## {parts.get(section, 'More')}", ""]
        lines.append(f"1. {link(stem, titles)}")
    path = NOTEBOOK_DIR / CONTENTS
    old = nbformat.read(path, as_version=4).cells if path.exists() else []
    notebook = new_notebook(cells=[_reuse(old, HEADER, "markdown", "\n".join(lines))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def render() -> dict[Path, str]:
    """Every notebook's text as the script would write it (for writing, and for the test)."""
    recap = yaml.safe_load(RECAP_FILE.read_text(encoding="utf-8"))
    paths = lessons()
    missing = [p.stem for p in paths if p.stem not in recap]
    if missing:
        raise SystemExit(f"{RECAP_FILE.name} has no entry for: {', '.join(missing)}")
    notebooks = {p: nbformat.read(p, as_version=4) for p in paths}
    order = [p.stem for p in paths]
    titles = {p.stem: title(nb, p.stem) for p, nb in notebooks.items()}
    unknown = {s for stem in order for s in recap[stem].get("after") or []} - set(order)
    if unknown:
        raise SystemExit(f"{RECAP_FILE.name} names notebooks that do not exist: {sorted(unknown)}")
    out = {p: nbformat.writes(with_navigation(nb, p.stem, recap[p.stem], order, titles)) + "\n"
           for p, nb in notebooks.items()}
    out[NOTEBOOK_DIR / CONTENTS] = nbformat.writes(contents(order, titles)) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "updated"
    print(f"{len(stale)} notebook(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
