"""The informer cache: the last known state of every watched object, filled by the watches.

Reconcile reads only from here, never with GETs. Two sources write to it, both on the event
loop's thread: the watches (through the kopf handlers) and the responses of the operator's own
writes (so the next reconcile sees what it just wrote, before the watch echoes it). A response
and a watch event for the same object may arrive in either order: the newer resourceVersion
wins, so an echo of an older write never replaces a newer state.

Objects are kept trimmed (:func:`kinds.trim`): no ``managedFields``, status only where it feeds
the app's status; and compact, as JSON text decoded when a reconcile reads them
(:class:`Entry`). Only objects matching the watches' label selectors ever arrive, so the
cache, and the operator's memory, does not grow with objects the operator does not manage.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .kinds import Key, Obj, WatchedKind


def _rv(obj: Obj) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None  # resourceVersions are opaque; etcd's happen to be integers


def _encode(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class Change(enum.Enum):
    """What an update brought: nothing new (an echo), only status, or more."""

    NONE = 0
    STATUS = 1
    OTHER = 2

    def __bool__(self) -> bool:
        return self is not Change.NONE


@dataclass(slots=True)
class Entry:
    """One cached object, held as compact JSON.

    A parsed Deployment as nested dicts costs about five times its JSON text in CPython
    (measured: the cache at 500 apps held 16 MB as dicts), and the cache is read only when
    an app is reconciled. So each object is kept as two byte strings, its content (without
    resourceVersion and status) and its status, and decoded on demand: a change test is then
    a comparison of bytes.
    """

    uid: str | None
    rv: int | None
    rv_text: str | None
    content: bytes
    status: bytes | None

    def decode(self) -> Obj:
        obj: Obj = json.loads(self.content)
        if self.rv_text is not None:
            obj["metadata"]["resourceVersion"] = self.rv_text
        if self.status is not None:
            obj["status"] = json.loads(self.status)
        return obj


def _entry(obj: Obj) -> Entry:
    meta = obj["metadata"]
    rv_text = meta.get("resourceVersion")
    content = {k: v for k, v in obj.items() if k != "status"}
    content["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
    status = obj.get("status")
    return Entry(
        uid=meta.get("uid"),
        rv=_rv(obj),
        rv_text=None if rv_text is None else str(rv_text),
        content=_encode(content),
        status=None if status is None else _encode(status),
    )


@dataclass
class Store:
    """Objects by kind and (namespace, name); the app keys known to exist."""

    objects: dict[str, dict[Key, Entry]] = field(default_factory=dict)
    #: (kind, key) -> a counter bumped whenever the object's content (not its status) changes,
    #: so reconcile can remember "checked, in sync" without comparing again
    versions: dict[tuple[str, Key], int] = field(default_factory=dict)
    _counter: int = 0

    def get(self, kind: WatchedKind, namespace: str, name: str) -> Obj | None:
        """A fresh copy of the held object (the caller may change it), or None."""
        entry = self.objects.get(kind.kind, {}).get((namespace, name))
        return None if entry is None else entry.decode()

    def has(self, kind: WatchedKind, namespace: str, name: str) -> bool:
        return (namespace, name) in self.objects.get(kind.kind, {})

    def status(self, kind: WatchedKind, namespace: str, name: str) -> Obj:
        """Only the held object's status ({} if none): cheaper than :meth:`get`."""
        entry = self.objects.get(kind.kind, {}).get((namespace, name))
        if entry is None or entry.status is None:
            return {}
        status: Obj = json.loads(entry.status)
        return status

    def version(self, kind: WatchedKind, namespace: str, name: str) -> int:
        """The content version of a held object (0 if none)."""
        return self.versions.get((kind.kind, (namespace, name)), 0)

    def keys(self, kind: WatchedKind) -> Iterator[Key]:
        yield from list(self.objects.get(kind.kind, {}))

    def count(self, kind: WatchedKind) -> int:
        return len(self.objects.get(kind.kind, {}))

    @staticmethod
    def encode(obj: Obj) -> tuple[Key, Entry]:
        """A trimmed object's key and compact form; pure, so any thread may encode."""
        meta = obj["metadata"]
        # one shared copy of each namespace name across all its keys
        key = (sys.intern(str(meta.get("namespace", ""))), str(meta["name"]))
        return key, _entry(obj)

    def upsert(self, kind: WatchedKind, obj: Obj) -> Change:
        """Store a trimmed object (:func:`kinds.trim`); what changed beyond its rv.

        An object older than the one held (a late echo of an earlier write) is ignored.
        """
        return self.put(kind, *self.encode(obj))

    def put(self, kind: WatchedKind, key: Key, new: Entry) -> Change:
        """:meth:`upsert` of an object already encoded (:meth:`encode`)."""
        bucket = self.objects.setdefault(kind.kind, {})
        old = bucket.get(key)
        if old is not None:
            same_object = old.uid == new.uid
            if same_object and old.rv is not None and new.rv is not None and new.rv <= old.rv:
                return Change.NONE
        bucket[key] = new
        if old is None or old.content != new.content:
            self._counter += 1
            self.versions[kind.kind, key] = self._counter
            return Change.OTHER
        return Change.STATUS if old.status != new.status else Change.NONE

    def delete(self, kind: WatchedKind, namespace: str, name: str, uid: str | None) -> bool:
        """Forget an object that was deleted (only if it is still the same one: same uid)."""
        bucket = self.objects.get(kind.kind, {})
        old = bucket.get((namespace, name))
        if old is None or (uid is not None and old.uid != uid):
            return False
        del bucket[(namespace, name)]
        self.versions.pop((kind.kind, (namespace, name)), None)
        return True
