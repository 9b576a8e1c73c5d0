"""The informer cache: the last known state of every watched object, filled by the watches.

Reconcile reads only from here, never with GETs. Two sources write to it, both on the event
loop's thread: the watches (through the kopf handlers) and the responses of the operator's own
writes (so the next reconcile sees what it just wrote, before the watch echoes it). A response
and a watch event for the same object may arrive in either order: the newer resourceVersion
wins, so an echo of an older write never replaces a newer state.

Objects are kept trimmed (:func:`kinds.trim`): no ``managedFields``, status only where it feeds
the app's status. Only objects matching the watches' label selectors ever arrive, so the
cache, and the operator's memory, does not grow with objects the operator does not manage.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from .kinds import Key, Obj, WatchedKind


def _rv(obj: Obj) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None  # resourceVersions are opaque; etcd's happen to be integers


def _content(obj: Obj) -> Obj:
    """What an object holds apart from its resourceVersion and status."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


class Change(enum.Enum):
    """What an update brought: nothing new (an echo), only status, or more."""

    NONE = 0
    STATUS = 1
    OTHER = 2

    def __bool__(self) -> bool:
        return self is not Change.NONE


@dataclass
class Store:
    """Objects by kind and (namespace, name); the app keys known to exist."""

    objects: dict[str, dict[Key, Obj]] = field(default_factory=dict)
    #: (kind, key) -> a counter bumped whenever the object's content (not its status) changes,
    #: so reconcile can remember "checked, in sync" without comparing again
    versions: dict[tuple[str, Key], int] = field(default_factory=dict)
    _counter: int = 0

    def get(self, kind: WatchedKind, namespace: str, name: str) -> Obj | None:
        return self.objects.get(kind.kind, {}).get((namespace, name))

    def version(self, kind: WatchedKind, namespace: str, name: str) -> int:
        """The content version of a held object (0 if none)."""
        return self.versions.get((kind.kind, (namespace, name)), 0)

    def keys(self, kind: WatchedKind) -> Iterator[Key]:
        yield from list(self.objects.get(kind.kind, {}))

    def count(self, kind: WatchedKind) -> int:
        return len(self.objects.get(kind.kind, {}))

    def upsert(self, kind: WatchedKind, obj: Obj) -> Change:
        """Store a trimmed object (:func:`kinds.trim`); what changed beyond its rv.

        An object older than the one held (a late echo of an earlier write) is ignored.
        """
        meta = obj["metadata"]
        key = (str(meta.get("namespace", "")), str(meta["name"]))
        bucket = self.objects.setdefault(kind.kind, {})
        old = bucket.get(key)
        if old is not None:
            same_object = old["metadata"].get("uid") == meta.get("uid")
            old_rv, new_rv = _rv(old), _rv(obj)
            if same_object and old_rv is not None and new_rv is not None and new_rv <= old_rv:
                return Change.NONE
        bucket[key] = obj
        if old is None or _content(old) != _content(obj):
            self._counter += 1
            self.versions[kind.kind, key] = self._counter
            return Change.OTHER
        return Change.STATUS if old.get("status") != obj.get("status") else Change.NONE

    def delete(self, kind: WatchedKind, namespace: str, name: str, uid: str | None) -> bool:
        """Forget an object that was deleted (only if it is still the same one: same uid)."""
        bucket = self.objects.get(kind.kind, {})
        old = bucket.get((namespace, name))
        if old is None or (uid is not None and old["metadata"].get("uid") != uid):
            return False
        del bucket[(namespace, name)]
        self.versions.pop((kind.kind, (namespace, name)), None)
        return True
