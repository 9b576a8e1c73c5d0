"""The informer cache: the last known state of every watched object, filled by the watches.

Reconcile reads only from here, never with GETs. Two sources write to it, both on the event
loop's thread: the informers (:mod:`.informer`: listings and watch events) and the responses of
the operator's own writes (so the next reconcile sees what it just wrote, before the watch
echoes it). A response and a watch event for the same object may arrive in either order: the
newer resourceVersion wins, so an echo of an older write never replaces a newer state.

Presence is the watch's word alone, as in client-go's informers: a write response may refresh
what is held but can never bring back an object whose deletion was observed (the uids of
deleted objects are remembered for a while: :attr:`Store.gone`), and a listing replaces a
kind's contents in its scope (:meth:`Store.replace`), so an object deleted while no watch ran
(a 410 Gone, a restart of the API server) does not stay.

Objects are kept trimmed (:func:`kinds.trim`): no ``managedFields``, status only where it feeds
the app's status; and compact, as compressed JSON text decoded when a reconcile reads them
(:class:`Entry`, :class:`Codec`). Only objects matching the watches' label selectors ever
arrive, so the cache, and the operator's memory, does not grow with objects the operator does
not manage.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import jsonio
from .kinds import Key, Obj, WatchedKind


def _version(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None  # resourceVersions are opaque; etcd's happen to be integers


def _rv(obj: Obj) -> int | None:
    return _version((obj.get("metadata") or {}).get("resourceVersion", ""))


def _encode(value: Any) -> bytes:
    return jsonio.dumps_sorted(value)


class Change(enum.Enum):
    """What an update brought: nothing new (an echo), only status, or more."""

    NONE = 0
    STATUS = 1
    OTHER = 2

    def __bool__(self) -> bool:
        return self is not Change.NONE


class Codec:
    """zlib with a preset dictionary: one kind's objects (or their statuses), compressed.

    The objects of one kind are nearly alike (the same renderer made them; the API server
    adds the same defaults), so with one of them as the preset dictionary every other one
    compresses to what sets it apart: names, labels, the image, hashes. Measured on the
    objects of 2,000 apps: a trimmed Deployment's JSON goes from 4.0 KB to 0.23 KB (0.45 KB
    with its status), the whole cache from 16.3 to 2.7 MiB; compressing one costs ~40 us,
    decompressing ~10 us (a quarter of the ``json.loads`` that follows it).

    The dictionary is the first object of the kind the cache encodes, kept for the process's
    life (every entry depends on it). Thread-safe: listed pages are encoded in threads.
    """

    #: zlib's default level: at this size, level 1 is barely faster and ~20 % larger
    LEVEL = 6

    __slots__ = ("_lock", "_zdict")

    def __init__(self) -> None:
        self._zdict: bytes | None = None
        self._lock = threading.Lock()

    def pack(self, data: bytes) -> bytes:
        zdict = self._zdict
        if zdict is None:
            with self._lock:
                if self._zdict is None:
                    self._zdict = data
                zdict = self._zdict
        packer = zlib.compressobj(self.LEVEL, zdict=zdict)
        return packer.compress(data) + packer.flush()

    def unpack(self, blob: bytes) -> bytes:
        if self._zdict is None:
            raise ValueError("nothing was packed with this codec")
        unpacker = zlib.decompressobj(zdict=self._zdict)
        return unpacker.decompress(blob) + unpacker.flush()


@dataclass(slots=True)
class Entry:
    """One cached object, held as compressed JSON.

    A parsed Deployment as nested dicts costs about five times its JSON text in CPython
    (measured: the cache at 500 apps held 16 MB as dicts), and the cache is read only when
    an app is reconciled. So each object is kept as two byte strings, its content (without
    resourceVersion and status) and its status, compressed (:class:`Codec`) and decoded on
    demand: a change test is then a comparison of bytes (the same JSON packs to the same
    bytes).
    """

    uid: str | None
    rv: int | None
    rv_text: str | None
    content: bytes
    status: bytes | None
    #: observed kinds (:data:`kinds.OBSERVED_KINDS`): the name of the app it belongs to, by
    #: its app label, so the cache finds an app's pods without decoding anyone else's
    app: str | None = None


@dataclass(frozen=True, slots=True)
class _Codecs:
    """The two codecs of one kind: its objects' content and their statuses."""

    content: Codec = field(default_factory=Codec)
    status: Codec = field(default_factory=Codec)

    def entry(self, obj: Obj) -> Entry:
        meta = obj["metadata"]
        rv_text = meta.get("resourceVersion")
        content = {k: v for k, v in obj.items() if k != "status"}
        content["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
        status = obj.get("status")
        return Entry(
            uid=meta.get("uid"),
            rv=_rv(obj),
            rv_text=None if rv_text is None else str(rv_text),
            content=self.content.pack(_encode(content)),
            status=None if status is None else self.status.pack(_encode(status)),
        )

    def decode(self, entry: Entry) -> Obj:
        obj: Obj = jsonio.loads(self.content.unpack(entry.content))
        if entry.rv_text is not None:
            obj["metadata"]["resourceVersion"] = entry.rv_text
        if entry.status is not None:
            obj["status"] = jsonio.loads(self.status.unpack(entry.status))
        return obj


def _not_newer(held: Entry | None, uid: str | None, rv: int | None) -> bool:
    """``held`` is the same object (same uid) at version ``rv`` or a newer one."""
    return (
        held is not None
        and held.uid == uid
        and held.rv is not None
        and rv is not None
        and rv <= held.rv
    )


#: how long the uid of a deleted object is remembered: far longer than any request may take
#: (a write's response absorbed after the object's DELETED was seen must not revive it)
GONE_SECONDS = 600.0


@dataclass
class Store:
    """Objects by kind and (namespace, name); the app keys known to exist."""

    objects: dict[str, dict[Key, Entry]] = field(default_factory=dict)
    #: uid -> when its deletion was observed (insertion order = time order, oldest first)
    gone: OrderedDict[str, float] = field(default_factory=OrderedDict)
    #: (kind, key) -> a counter bumped whenever the object's content (not its status) changes,
    #: so reconcile can remember "checked, in sync" without comparing again
    versions: dict[tuple[str, Key], int] = field(default_factory=dict)
    #: observed kinds: (kind, (namespace, app name)) -> names of the objects of that app
    members: dict[tuple[str, Key], set[str]] = field(default_factory=dict)
    _counter: int = 0
    _codecs: dict[str, _Codecs] = field(default_factory=dict)

    def _codecs_of(self, kind: WatchedKind) -> _Codecs:
        # setdefault is atomic: threads encoding a new kind's first objects share one codec
        return self._codecs.get(kind.kind) or self._codecs.setdefault(kind.kind, _Codecs())

    def get(self, kind: WatchedKind, namespace: str, name: str) -> Obj | None:
        """A fresh copy of the held object (the caller may change it), or None."""
        entry = self.objects.get(kind.kind, {}).get((namespace, name))
        return None if entry is None else self._codecs_of(kind).decode(entry)

    def has(self, kind: WatchedKind, namespace: str, name: str) -> bool:
        return (namespace, name) in self.objects.get(kind.kind, {})

    def status(self, kind: WatchedKind, namespace: str, name: str) -> Obj:
        """Only the held object's status ({} if none): cheaper than :meth:`get`."""
        entry = self.objects.get(kind.kind, {}).get((namespace, name))
        if entry is None or entry.status is None:
            return {}
        status: Obj = jsonio.loads(self._codecs_of(kind).status.unpack(entry.status))
        return status

    def holds(self, kind: WatchedKind, key: Key, uid: str | None, rv: object) -> bool:
        """The cache holds this very object (same uid) at version ``rv`` or a newer one.

        Then an event carrying it can change nothing (:meth:`put` would ignore it): the echo of
        the operator's own write, or kopf's listing of what the controller listed itself at
        start-up. Asked before anything is trimmed or encoded, so such an event costs a lookup.
        """
        return _not_newer(self.objects.get(kind.kind, {}).get(key), uid, _version(rv))

    def version(self, kind: WatchedKind, namespace: str, name: str) -> int:
        """The content version of a held object (0 if none)."""
        return self.versions.get((kind.kind, (namespace, name)), 0)

    def keys(self, kind: WatchedKind) -> Iterator[Key]:
        yield from list(self.objects.get(kind.kind, {}))

    def count(self, kind: WatchedKind) -> int:
        return len(self.objects.get(kind.kind, {}))

    def encode(self, kind: WatchedKind, obj: Obj) -> tuple[Key, Entry]:
        """A trimmed object's key and compact form; changes nothing held, so any thread may
        encode."""
        meta = obj["metadata"]
        # one shared copy of each namespace name across all its keys
        key = (sys.intern(str(meta.get("namespace", ""))), str(meta["name"]))
        entry = self._codecs_of(kind).entry(obj)
        if kind.app_label is not None:
            app = (meta.get("labels") or {}).get(kind.app_label)
            entry.app = None if app is None else str(app)
        return key, entry

    def members_of(self, kind: WatchedKind, namespace: str, app: str) -> list[Obj]:
        """The held objects of an observed kind that belong to the app (by its app label)."""
        names = self.members.get((kind.kind, (namespace, app)))
        if not names:
            return []
        found = (self.get(kind, namespace, name) for name in sorted(names))
        return [obj for obj in found if obj is not None]

    def _index(self, kind: WatchedKind, key: Key, old: Entry | None, new: Entry | None) -> None:
        if kind.app_label is None:
            return
        if old is not None and old.app is not None and (new is None or new.app != old.app):
            slot = (kind.kind, (key[0], old.app))
            names = self.members.get(slot)
            if names is not None:
                names.discard(key[1])
                if not names:
                    del self.members[slot]
        if new is not None and new.app is not None:
            self.members.setdefault((kind.kind, (key[0], new.app)), set()).add(key[1])

    def upsert(self, kind: WatchedKind, obj: Obj) -> Change:
        """Store a trimmed object (:func:`kinds.trim`); what changed beyond its rv.

        An object older than the one held (a late echo of an earlier write) is ignored.
        """
        return self.put(kind, *self.encode(kind, obj))

    def put(self, kind: WatchedKind, key: Key, new: Entry) -> Change:
        """:meth:`upsert` of an object already encoded (:meth:`encode`).

        An object whose deletion was observed is never stored again (a late write response,
        or a listing that began before the deletion).
        """
        if new.uid is not None and new.uid in self.gone:
            return Change.NONE
        bucket = self.objects.setdefault(kind.kind, {})
        old = bucket.get(key)
        if _not_newer(old, new.uid, new.rv):
            return Change.NONE
        bucket[key] = new
        self._index(kind, key, old, new)
        if old is None or old.content != new.content:
            self._counter += 1
            self.versions[kind.kind, key] = self._counter
            return Change.OTHER
        return Change.STATUS if old.status != new.status else Change.NONE

    def delete(self, kind: WatchedKind, namespace: str, name: str, uid: str | None) -> Entry | None:
        """Forget an object that was deleted (only if it is still the same one: same uid);
        the entry forgotten, or None.

        The uid is remembered (:attr:`gone`) even when nothing is held: a write response or a
        listed copy of the object may still arrive, and must not bring it back.
        """
        if uid is not None:
            self._bury(uid)
        bucket = self.objects.get(kind.kind, {})
        old = bucket.get((namespace, name))
        if old is None or (uid is not None and old.uid != uid):
            return None
        del bucket[(namespace, name)]
        self.versions.pop((kind.kind, (namespace, name)), None)
        self._index(kind, (namespace, name), old, None)
        return old

    def _bury(self, uid: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.gone[uid] = now
        self.gone.move_to_end(uid)
        while self.gone:
            oldest, when = next(iter(self.gone.items()))
            if now - when <= GONE_SECONDS:
                break
            del self.gone[oldest]

    def replace(
        self,
        kind: WatchedKind,
        namespace: str | None,
        listed: Iterable[tuple[Key, Entry]],
        list_rv: object,
    ) -> tuple[list[tuple[Key, Change]], list[tuple[Key, Entry]]]:
        """A full listing of ``kind`` in ``namespace`` (None: every namespace) at ``list_rv``.

        Every listed object is stored (:meth:`put`: a newer held one wins); every held one of
        the scope that the listing does not hold is deleted, unless the cache holds it at a
        version newer than the listing (a write response for an object created after the
        list was taken: the watch from ``list_rv`` will tell its fate). Returns what changed
        (key, change) and what was deleted (key, the entry), so the caller enqueues whom it
        concerns. This is how a deletion missed while no watch ran (410 Gone, a restart of the
        API server) is noticed.
        """
        changed: list[tuple[Key, Change]] = []
        seen: set[Key] = set()
        for key, entry in listed:
            seen.add(key)
            change = self.put(kind, key, entry)
            if change:
                changed.append((key, change))
        version = _version(list_rv)
        removed: list[tuple[Key, Entry]] = []
        for key, held in list(self.objects.get(kind.kind, {}).items()):
            if key in seen or (namespace is not None and key[0] != namespace):
                continue
            if version is not None and held.rv is not None and held.rv > version:
                continue  # written after the listing was taken
            if self.delete(kind, *key, held.uid):
                removed.append((key, held))
        return changed, removed
