"""Reading pipeline.yaml: typed values out of the raw mapping, with every problem reported
by file, line and key path (not only the first), in line order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def line_map(node: yaml.Node | None) -> dict[str, int]:
    lines: dict[str, int] = {}

    def walk(n: yaml.Node, path: str) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, f"{path}[{i}]")

    if node is not None:
        walk(node, "")
    return lines


class Reader:
    """Reads typed values out of the raw mapping, collecting every problem instead of the first."""

    def __init__(self, path: Path, lines: dict[str, int]):
        self.path = path
        self.lines = lines
        self.problems: list[tuple[int, str]] = []  # (line, message), reported in line order

    def problem(self, key: str, message: str) -> None:
        line = self.lines.get(key) or self.lines.get(key.rsplit(".", 1)[0]) or 1
        self.problems.append((line, f"{self.path}:{line}: {key}: {message}"))

    def section(self, data: dict, key: str, known: set[str]) -> dict:
        value = data.get(key.rsplit(".", 1)[-1])
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, "must be a mapping")
            return {}
        for unknown in sorted(set(map(str, value)) - known):
            self.problem(f"{key}.{unknown}", f"unknown setting (known: {', '.join(sorted(known))})")
        return value

    def get(
        self,
        data: dict,
        key: str,
        kind: type | tuple[type, ...],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            return default
        if isinstance(value, bool) and kind is int or not isinstance(value, kind):
            names = (kind.__name__ if isinstance(kind, type)
                     else " or ".join(k.__name__ for k in kind))
            self.problem(key, f"must be {article(names)} (got {value!r})")
            return default
        if check is not None and (message := check(value)):
            self.problem(key, f"{message} (got {value!r})")
            return default
        return value


def article(name: str) -> str:
    words = {"int": "an integer", "str": "a string", "bool": "true or false", "list": "a list"}
    return " or ".join(words.get(part, part) for part in name.split(" or "))


def between(low: int, high: int) -> Callable[[int], str | None]:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"
