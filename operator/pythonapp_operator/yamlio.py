"""Reading and writing multi-document YAML the same way everywhere.

Output is block style with the renderer's key order kept (``sort_keys=False``), so the CRD file
and ``pythonapp render`` output are stable and diff well.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full: anchors (&id001) confuse readers and some tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class YamlError(ValueError):
    """A file that is not YAML; the message names the line."""


def dump_all(documents: Iterable[Any]) -> str:
    """Multi-document YAML, ``---`` before every document."""
    return yaml.dump_all(
        list(documents),
        Dumper=_NoAliasDumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        width=100,
        allow_unicode=True,
    )


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream (empty documents dropped)."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{where}not valid YAML: {problem}") from None
