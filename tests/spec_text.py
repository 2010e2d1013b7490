"""Column names and code lists read from the spec's own Markdown (shared/spec/extracts.md), so
that tests compare the code with the contract as written, not with the code's copy of it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "extracts.md"


@cache
def spec_text() -> str:
    if not SPEC.exists():
        raise FileNotFoundError(f"the tests read the spec at {SPEC}: check out shared/ beside this repository")
    return SPEC.read_text(encoding="utf-8")


def _table_after(heading: str) -> list[list[str]]:
    text = spec_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[1:]  # drop the header row


@cache
def identity_columns() -> list[str]:
    names = []
    for row in _table_after("## 2. The identity block"):
        names += re.findall(r"`([a-z_]+)`", row[0])
    return names


@cache
def source_columns(source: str) -> dict[str, tuple[str, str]]:
    """Column name -> the spec's (type, meaning) text, for the source's own columns."""
    return {
        name: (row[1], row[2])
        for row in _table_after(f"### `{source}`")
        for name in re.findall(r"`([a-z_0-9]+)`", row[0])
    }


def codes_in(type_text: str) -> list[str]:
    return re.findall(r"`([A-Za-z_]+)`", type_text)


@cache
def prose_code_list(label: str) -> list[str]:
    """A code list the spec gives as prose after `label`, e.g. 'Substances:'."""
    text = spec_text()
    start = text.index(label) + len(label)
    para = text[start : text.index("\n\n", start)]
    return re.findall(r"`([a-z_]+)`", para)
