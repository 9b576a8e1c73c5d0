"""Decide, without writing, whether a child object already is what the renderer wants.

The operator must idle at zero writes, so it applies a child only when something differs:

- the child is missing;
- the child's ``pythonapp.dev/desired-hash`` annotation differs from the hash of the newly
  rendered manifest (the spec changed, including fields that were *removed*, which a plain
  subset test cannot see);
- someone edited a field the operator owns (drift): the desired manifest is no longer a
  subset of the live object.

"Subset" is deliberately tolerant of what others may add under server-side apply: extra keys,
extra list items (a ``kubectl rollout restart`` annotation, an injected env var), and values
the API server re-spells (quantities such as ``0.5`` -> ``500m``).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

HASH_ANNOTATION = "pythonapp.dev/desired-hash"


def desired_hash(manifest: dict[str, Any]) -> str:
    """A stable hash of a rendered manifest (the hash annotation itself excluded)."""
    meta = dict(manifest.get("metadata", {}))
    annotations = {k: v for k, v in meta.get("annotations", {}).items() if k != HASH_ANNOTATION}
    meta["annotations"] = annotations
    canonical = json.dumps({**manifest, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def with_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its hash annotation set (what is applied)."""
    digest = desired_hash(manifest)
    meta = dict(manifest["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), HASH_ANNOTATION: digest}
    return {**manifest, "metadata": meta}


def _same_quantity(a: str, b: str) -> bool:
    try:
        qa: Decimal = parse_quantity(a)  # type: ignore[no-untyped-call]
        qb: Decimal = parse_quantity(b)  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation, ArithmeticError):
        return False
    return qa == qb


#: booleans the API server keeps without a pointer (omitempty): ``false`` is never stored.
#: The renderer writes them anyway, so the operator's apply owns them and puts them back.
OMITTED_WHEN_FALSE = frozenset({"hostNetwork", "hostPID", "hostIPC"})


def _is_empty(value: Any, key: str = "") -> bool:
    """The API server drops empty lists and maps (omitempty): absent equals empty."""
    return value is None or value in ([], {}) or (value is False and key in OMITTED_WHEN_FALSE)


def is_subset(desired: Any, live: Any) -> bool:
    """True when every value in ``desired`` is present, equal, in ``live``."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(
            is_subset(value, live[key]) if key in live else _is_empty(value, key)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if all(not isinstance(item, dict) for item in desired):
            return desired == live  # scalar lists (command, args, capabilities) are atomic
        return all(any(is_subset(item, candidate) for candidate in live) for item in desired)
    if isinstance(desired, str) and isinstance(live, str) and desired != live:
        return _same_quantity(desired, live)
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    return bool(desired == live)


def needs_apply(
    desired: dict[str, Any], live: dict[str, Any] | None, digest: str | None = None
) -> str | None:
    """Why the child must be applied (``missing``, ``changed``, ``drift``), or None.

    ``digest``: ``desired_hash(desired)`` when the caller has it already.
    """
    if live is None:
        return "missing"
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(HASH_ANNOTATION) != (digest or desired_hash(desired)):
        return "changed"
    if not is_subset(desired, live):
        return "drift"
    return None


_VOLATILE_META = ("resourceVersion", "generation", "creationTimestamp", "managedFields")


def fingerprint(live: dict[str, Any]) -> str:
    """A hash of what a live object holds, less what changes without anyone editing it.

    Used to remember that an object the subset test calls drifted is in fact settled: the API
    server answered an apply of it without changing anything (it re-spells a value the
    comparison does not know). The memory lasts exactly as long as the object stays the same:
    any edit changes the fingerprint, and drift correction looks at it again.
    """
    meta = {k: v for k, v in (live.get("metadata") or {}).items() if k not in _VOLATILE_META}
    rest = {k: v for k, v in live.items() if k not in ("metadata", "status")}
    canonical = json.dumps({**rest, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
