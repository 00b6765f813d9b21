"""Google's ``fields`` partial-response parameter: ``items(id,snippet/title),nextPageToken``.

Grammar (Google's "partial response" guide): a comma-separated list of selectors; ``a/b``
selects ``b`` inside ``a``; ``a(b,c)`` selects ``b`` and ``c`` inside ``a`` (inside each element
when ``a`` is a list); ``*`` selects every field at its level. A selection is parsed into a tree
(``{"items": {"id": None, "snippet": {"title": None}}, "nextPageToken": None}``; ``None`` keeps
the whole value) and applied to the decoded answer.
"""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"[A-Za-z0-9_*$.-]+")
Tree = dict[str, "Tree | None"]


class FieldsError(ValueError):
    """A ``fields`` value that is not a valid selection."""


def parse_fields(text: str) -> Tree:
    position = 0

    def name() -> str:
        nonlocal position
        match = NAME.match(text, position)
        if match is None:
            raise FieldsError(f"Invalid field selection {text}")
        position = match.end()
        return match.group()

    def peek() -> str:
        return text[position] if position < len(text) else ""

    def selection() -> Tree:
        nonlocal position
        tree: Tree = {}
        while True:
            path = [name()]
            while peek() == "/":
                position += 1
                path.append(name())
            sub: Tree | None = None
            if peek() == "(":
                position += 1
                sub = selection()
                if peek() != ")":
                    raise FieldsError(f"Invalid field selection {text}")
                position += 1
            _insert(tree, path, sub)
            if peek() != ",":
                return tree
            position += 1

    tree = selection()
    if position != len(text):
        raise FieldsError(f"Invalid field selection {text}")
    return tree


def _insert(tree: Tree, path: list[str], sub: Tree | None) -> None:
    head, rest = path[0], path[1:]
    if head in tree and tree[head] is None:
        return  # already the whole value
    if not rest:
        tree[head] = None if sub is None else {**(tree.get(head) or {}), **sub}
        return
    child = tree.get(head)
    if child is None:
        child = tree[head] = {}
    _insert(child, rest, sub)


def select(value: Any, tree: Tree | None) -> Any:
    """``value`` with only the selected fields (lists: each element)."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [select(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    chosen: dict[str, Any] = {}
    for key, sub in tree.items():
        if key == "*":
            chosen.update({k: select(v, sub) for k, v in value.items()})
        elif key in value:
            chosen[key] = select(value[key], sub)
    return chosen
