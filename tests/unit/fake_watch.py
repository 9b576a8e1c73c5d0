"""An in-memory list/watch server for the informers' unit tests.

It keeps what an informer depends on: a LIST answers every object of a collection with the
collection's resourceVersion; a WATCH from a version streams every later event, in order,
until the stream is ended (:meth:`disconnect`, or the client closing it); a watch from a
version older than the last compaction answers 410 Gone. Deletions can be made *unseen*
(:meth:`delete` with ``seen=False``), as happens to a client whose watch was down while the
API server compacted its history: its next watch is refused with 410 and only a listing
shows the object gone. Everything else about the API server is tested on the real one.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Obj = dict[str, Any]


class FakeWatchServer:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (plural, namespace, name)
        self.log: list[tuple[int, str, str, Obj]] = []  # (rv, plural, type, object)
        self.unserved: set[str] = set()  # plurals answering 404 (a CRD not installed)
        self.requests: Counter[tuple[str, int]] = Counter()
        self._rv = itertools.count(10)
        self.rv = 9
        self._compacted = 0
        self._epoch = 0  # bumped to end every open stream
        self._closed = False
        self._cond = threading.Condition()

    # -- for tests ---------------------------------------------------------------------------
    def put(self, plural: str, obj: Obj) -> Obj:
        with self._cond:
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            meta.setdefault("uid", str(uuid.uuid4()))
            key = (plural, meta.get("namespace", ""), meta["name"])  # "": cluster-scoped
            kind = "MODIFIED" if key in self.objects else "ADDED"
            self.rv = next(self._rv)
            meta["resourceVersion"] = str(self.rv)
            self.objects[key] = obj
            self.log.append((self.rv, plural, kind, copy.deepcopy(obj)))
            self._cond.notify_all()
            return copy.deepcopy(obj)

    def delete(self, plural: str, namespace: str, name: str, *, seen: bool = True) -> None:
        """Delete an object; ``seen=False``: the API server's history no longer holds the
        deletion (compacted), so a watch resumed from before it is refused with 410."""
        with self._cond:
            obj = self.objects.pop((plural, namespace, name))
            self.rv = next(self._rv)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            if seen:
                self.log.append((self.rv, plural, "DELETED", obj))
            else:
                self._compacted = self.rv
            self._cond.notify_all()

    def disconnect(self) -> None:
        """End every open watch (the client resumes from the last version it saw)."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    # -- what an informer calls --------------------------------------------------------------
    @staticmethod
    def _parse(path: str) -> tuple[str, str | None]:
        parts = path.strip("/").split("/")
        namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts else None
        return parts[-1], namespace

    def request(self, method: str, path: str, **_: Any) -> tuple[int, bytes]:
        plural, namespace = self._parse(path)
        if plural in self.unserved:
            self.requests["GET", 404] += 1
            return 404, b'{"kind":"Status","code":404}'
        self.requests["GET", 200] += 1
        with self._cond:
            items = [
                copy.deepcopy(o)
                for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and namespace in (None, ns)
            ]
            body = {"metadata": {"resourceVersion": str(self.rv)}, "items": items}
        return 200, json.dumps(body).encode()

    @contextmanager
    def stream(
        self, path: str, *, query: dict[str, str], read_timeout: float, **_: Any
    ) -> Iterator[tuple[int, Iterator[bytes]]]:
        plural, namespace = self._parse(path)
        since = int(query["resourceVersion"])
        if plural in self.unserved:
            yield 404, iter([b'{"kind":"Status","code":404}'])
            return
        if since < self._compacted:
            yield 410, iter([b'{"kind":"Status","code":410}'])
            return
        yield 200, self._events(plural, namespace, since, self._epoch)

    def _events(
        self, plural: str, namespace: str | None, since: int, epoch: int
    ) -> Iterator[bytes]:
        while True:
            with self._cond:
                while (
                    not self._closed
                    and self._epoch == epoch
                    and not any(rv > since for rv, *_ in self.log)
                ):
                    self._cond.wait(0.05)
                if self._closed or self._epoch != epoch:
                    return
                batch = [e for e in self.log if e[0] > since]
            for rv, p, kind, obj in batch:
                since = rv
                if p == plural and namespace in (None, obj["metadata"].get("namespace", "")):
                    yield json.dumps({"type": kind, "object": obj}).encode()

    def close_streams(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
