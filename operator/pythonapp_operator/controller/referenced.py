"""Which apps reference which Secrets and ConfigMaps, and whether the operator may read them.

Secrets (``spec.secrets``, ``spec.imagePullSecrets``) and ConfigMaps (``spec.config``) are
not children: they carry no label of ours, and many apps may name one. The controller keeps,
per referenced kind, the reverse index from (namespace, name) to the apps naming it, so a
change to one enqueues those apps and nobody else, and whether RBAC lets the operator list
the kind at all (an install without the right works with that kind's check and rotation off).
The index is kept from the apps' specs as they are reconciled (validated or not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kinds import Key, WatchedKind
from .secretrefs import Digests


def _names(app: Mapping[str, Any], *fields: str) -> tuple[str, ...]:
    spec = app.get("spec") or {}
    names: set[str] = set()
    for name in fields:
        refs = spec.get(name) if isinstance(spec, Mapping) else None
        if isinstance(refs, list):
            names.update(
                str(r["name"])
                for r in refs
                if isinstance(r, dict) and isinstance(r.get("name"), str)
            )
    return tuple(sorted(names))


def secret_names(app: Mapping[str, Any]) -> tuple[str, ...]:
    """The Secret names an app's spec references, as stored (validated or not): mounted or
    mapped ones and image pull Secrets alike (a pull Secret that appears lets the app go on)."""
    return _names(app, "secrets", "imagePullSecrets")


def config_names(app: Mapping[str, Any]) -> tuple[str, ...]:
    """The ConfigMap names an app's spec references, as stored."""
    return _names(app, "config")


@dataclass
class References:
    """One referenced kind: who names what, whether it may be read, and the digests of the
    ones read (shared by every app's reconcile)."""

    kind: WatchedKind
    names_of: Callable[[Mapping[str, Any]], tuple[str, ...]]
    #: the operator may list this kind: its check and rotation are on (RBAC decides)
    readable: bool = True
    digests: Digests = field(default_factory=Digests)
    #: (namespace, name) -> the apps referencing it
    users: dict[Key, set[str]] = field(default_factory=dict)
    _named_by: dict[Key, tuple[str, ...]] = field(default_factory=dict)

    @property
    def plural(self) -> str:
        return self.kind.plural

    def use(self, key: Key, names: tuple[str, ...]) -> None:
        """Remember which objects of this kind the app ``key`` references."""
        before = self._named_by.get(key, ())
        if before == names:
            return
        for name in set(before) - set(names):
            users = self.users.get((key[0], name))
            if users is not None:
                users.discard(key[1])
                if not users:
                    del self.users[key[0], name]
        for name in names:
            self.users.setdefault((key[0], name), set()).add(key[1])
        if names:
            self._named_by[key] = names
        else:
            self._named_by.pop(key, None)
