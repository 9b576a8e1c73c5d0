"""Turn YAML documents into PythonApp models or into problems a person can act on.

:func:`find_pythonapps` finds every PythonApp in a file's documents, wherever it sits: a
document of its own, or an item of a ``kind: List`` (``kubectl get -o yaml`` output), of a
``PythonAppList``, or of any ``*List`` with ``items``, Lists inside Lists included. What is not a
Kubernetes object at all (a top-level YAML sequence, a scalar, a mapping without ``kind``) is a
problem, never silently skipped: a CI gate must not pass a file it did not understand.

Pydantic reports errors as nested locations; users need ``spec.secrets[1].mountPath: message``.
Cross-field rules arrive as one pydantic error carrying several problems (see
``models._rule_error``); they are expanded here so each gets its own path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .. import KIND
from .models import API_VERSION, PythonApp

_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": (
        "is not a field of this object (unknown fields are refused): check the spelling; "
        "`kubectl explain pythonapps.spec` lists the fields"
    ),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one PythonApp, at one field (or, as a warning, one risky choice)."""

    namespace: str | None
    name: str | None
    path: str
    message: str
    warning: bool = False

    def format(self, source: str) -> str:
        """``FILE: NAMESPACE/NAME: FIELD.PATH: message`` (the CLI contract); warnings say
        ``warning:`` before the message."""
        ns = self.namespace or "-"
        name = self.name or "-"
        message = f"warning: {self.message}" if self.warning else self.message
        return f"{source}: {ns}/{name}: {self.path}: {message}"


@dataclass(frozen=True)
class DocumentProblem:
    """A document that is not something ``validate`` can check: ``FILE: document N: ...``."""

    where: str
    message: str

    def format(self, source: str) -> str:
        """``FILE: document N[: items[i]...]: message``."""
        return f"{source}: {self.where}: {self.message}"


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


#: Lists inside Lists deeper than this are refused (the YAML reader bounds nesting anyway;
#: this bounds the walk for documents from elsewhere).
MAX_LIST_NESTING = 16
LIST_KIND = f"{KIND}List"


@dataclass
class Found:
    """What :func:`find_pythonapps` found in one file's documents."""

    apps: list[dict[str, Any]] = field(default_factory=list)
    problems: list[DocumentProblem] = field(default_factory=list)
    other_kinds: list[str] = field(default_factory=list)


def _what(value: object) -> str:
    """A short description of a YAML value for a message."""
    if value is None:
        return "an empty value"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value) if isinstance(value, str) else str(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def find_pythonapps(documents: Sequence[object]) -> Found:
    """Every PythonApp document in a file, in file order, and every document that is not a
    Kubernetes object. Other kinds are only counted (``validate`` skips them)."""
    found = Found()
    for number, doc in enumerate(documents, start=1):
        if isinstance(doc, list):
            found.problems.append(
                DocumentProblem(
                    f"document {number}",
                    "a YAML sequence, not a Kubernetes object: put the objects under `items:` "
                    "of a `kind: List` (apiVersion: v1), or separate them with `---`",
                )
            )
            continue
        _walk(found, _Place(number), doc)
    return found


@dataclass(frozen=True)
class _Place:
    """Where a document sits: ``document 3`` or ``document 3: items[0].items[2]``."""

    number: int
    path: tuple[int, ...] = ()

    def item(self, index: int) -> _Place:
        return _Place(self.number, (*self.path, index))

    def __str__(self) -> str:
        items = ".".join(f"items[{i}]" for i in self.path)
        return f"document {self.number}" + (f": {items}" if items else "")


def _walk(found: Found, place: _Place, doc: object) -> None:
    def problem(message: str, suffix: str = "") -> None:
        found.problems.append(DocumentProblem(f"{place}{suffix}", message))

    if not isinstance(doc, dict):
        what = "a YAML sequence" if isinstance(doc, list) else _what(doc)
        problem(f"not a Kubernetes object (a mapping with apiVersion and kind): found {what}")
        return
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        problem(
            "not a Kubernetes object: it has no `kind`"
            if kind is None
            else f"`kind` must be a non-empty string (found {_what(kind)})"
        )
        return
    if kind == KIND:
        found.apps.append(doc)
        return
    if kind.lower() == KIND.lower():
        problem(f"kind {kind!r} is not {KIND!r} (kinds are case-sensitive)")
        return
    if not (kind.endswith("List") and ("items" in doc or kind in ("List", LIST_KIND))):
        found.other_kinds.append(kind)
        return
    items = doc.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        problem(f"must be a list of objects (found {_what(items)})", suffix=": items")
        return
    if len(place.path) >= MAX_LIST_NESTING:
        problem(f"refused: Lists nested more than {MAX_LIST_NESTING} deep")
        return
    for index, item in enumerate(items):
        if kind == LIST_KIND and isinstance(item, dict) and "kind" not in item:
            # Every item of a PythonAppList is a PythonApp: a list written by hand or by a
            # client that leaves kind and apiVersion off the items is still checked.
            _walk(
                found,
                place.item(index),
                {"apiVersion": doc.get("apiVersion"), "kind": KIND, **item},
            )
        else:
            _walk(found, place.item(index), item)
