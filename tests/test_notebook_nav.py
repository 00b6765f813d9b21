"""Every notebook opens with its prerequisites and ends with recap questions and prev/next links,
exactly as ``scripts/notebook_nav.py`` writes them from ``notebooks/recap.yml``."""

from __future__ import annotations

import ast
import importlib.util

import nbformat
import pytest
import yaml

from opusclip_lib import config

ROOT = config.PROJECT_ROOT
_spec = importlib.util.spec_from_file_location("notebook_nav", ROOT / "scripts" / "notebook_nav.py")
nav = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nav)

LESSONS = nav.lessons()
RECAP = yaml.safe_load(nav.RECAP_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_notebook_has_a_recap_entry(path) -> None:
    assert path.stem in RECAP, f"add {path.stem} to notebooks/recap.yml"


@pytest.mark.parametrize("stem", sorted(RECAP))
def test_recap_entry_has_three_to_five_questions(stem) -> None:
    assert 3 <= len(RECAP[stem]["questions"]) <= 5


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_first_cell_is_the_prerequisites(path) -> None:
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.metadata.get("tags") == [nav.HEADER]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_last_cell_is_the_recap_with_links(path) -> None:
    last = nbformat.read(path, as_version=4).cells[-1]
    assert last.metadata.get("tags") == [nav.FOOTER]


def test_notebooks_match_the_script_output() -> None:
    """Run ``.venv/bin/python scripts/notebook_nav.py`` after changing a notebook or recap.yml."""
    stale = [path.name for path, text in nav.render().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == []


def test_script_changes_nothing_the_second_time(tmp_path, monkeypatch) -> None:
    for path, text in nav.render().items():
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    (tmp_path / "solutions").symlink_to(nav.NOTEBOOK_DIR / "solutions")
    monkeypatch.setattr(nav, "NOTEBOOK_DIR", tmp_path)
    first = {p.name: t for p, t in nav.render().items()}
    assert first == {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.ipynb")}


def test_a_notebook_without_an_entry_is_an_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "99_new.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    monkeypatch.setattr(nav, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(SystemExit, match="no entry for: 99_new"):
        nav.render()


def test_owned_cells_are_replaced_and_lesson_cells_kept() -> None:
    lesson = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 10 · A lesson"),
                                             nbformat.v4.new_code_cell("x = 1")])
    entry = {"after": [], "know": "nothing.", "questions": ["a?", "b?", "c?"]}
    titles = {"10_a": "10 · A lesson", "11_b": "11 · B"}
    once = nav.with_navigation(lesson, "10_a", entry, ["10_a", "11_b"], titles)
    twice = nav.with_navigation(nbformat.reads(nbformat.writes(once), 4), "10_a", entry,
                                ["10_a", "11_b"], titles)
    assert [c.source for c in twice.cells[1:-1]] == ["# 10 · A lesson", "x = 1"]
    assert nbformat.writes(twice) == nbformat.writes(once)
    assert "Next: [11 · B](11_b.ipynb)" in twice.cells[-1].source


def test_starter_stub_keeps_the_parameters_and_runs_without_the_annotations() -> None:
    source = ("async def exercise_1_x(db: Database, n: int = 3, *rest: Video, "
              "flag: bool = False, when: Clock = now(), **extra: Any) -> Report:\n    pass\n")
    stub = nav._stub(ast.parse(source).body[0])
    namespace: dict = {}
    exec(compile(stub, "<stub>", "exec"), namespace)  # no NameError for Database, Video...
    assert "async def exercise_1_x(db, n=3, *rest, flag=False, when=None, **extra):" in stub
    assert stub.startswith("# solution's signature: async def exercise_1_x(db: Database")
