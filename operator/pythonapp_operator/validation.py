"""Turn PythonApp documents into models or into a list of problems a person can act on.

Pydantic reports errors as nested locations; users need ``spec.secrets[1].mountPath: message``.
Cross-field rules arrive as one pydantic error carrying several problems (see
``models._rule_error``); they are expanded here so each gets its own path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .models import API_VERSION, PythonApp

KIND = "PythonApp"

_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": (
        "is not a field of this object (unknown fields are refused): check the spelling; "
        "`kubectl explain pythonapps.spec` lists the fields"
    ),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one PythonApp, at one field."""

    namespace: str | None
    name: str | None
    path: str
    message: str

    def format(self, source: str) -> str:
        """``FILE: NAMESPACE/NAME: FIELD.PATH: message`` (the CLI contract)."""
        ns = self.namespace or "-"
        name = self.name or "-"
        return f"{source}: {ns}/{name}: {self.path}: {self.message}"


def format_path(loc: Sequence[str | int]) -> str:
    """``('spec', 'secrets', 1, 'mountPath')`` -> ``spec.secrets[1].mountPath``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(document)"


def _problems_from(exc: ValidationError, namespace: str | None, name: str | None) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "rules" and "problems" in ctx:
            for sub_loc, message in ctx["problems"]:
                problems.append(
                    Problem(namespace, name, format_path(loc + tuple(sub_loc)), message)
                )
            continue
        message = _FRIENDLY.get(err["type"], err["msg"])
        problems.append(Problem(namespace, name, format_path(loc), message))
    return problems


def is_pythonapp(doc: object) -> bool:
    """True for documents of kind PythonApp (any apiVersion: a wrong one is reported)."""
    return isinstance(doc, dict) and doc.get("kind") == KIND


def validate_document(doc: dict[str, Any]) -> tuple[PythonApp | None, list[Problem]]:
    """Validate one PythonApp document; exactly one of the two results is meaningful."""
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    if doc.get("apiVersion") != API_VERSION:
        return None, [
            Problem(
                namespace,
                name,
                "apiVersion",
                f"must be {API_VERSION} (found {doc.get('apiVersion')!r})",
            )
        ]
    try:
        app = PythonApp.model_validate(doc)
    except ValidationError as exc:
        return None, _problems_from(exc, namespace, name)
    return app, []
