"""One home per watched kind and scope: list it, watch it, hand every change to the controller.

This is client-go's reflector, the half of an informer that talks to the API server, with the
store (:class:`~.cache.Store`) as the other half, owned by the controller:

- a **listing** (paged) is handed over whole (:class:`Listed`): the controller *replaces* the
  kind's contents in the scope with it, so an object deleted while no watch ran (a 410 Gone
  after a long disconnect, a restart of the API server) is noticed, though no DELETED event
  ever arrives for it;
- then a **watch** from the listing's resourceVersion (with bookmarks, so a quiet kind's
  version stays fresh): each event is handed over as it comes (:class:`Event`); a watch that
  ends by timeout is resumed from the last version seen, without listing again;
- a 410 Gone (the version is too old), or any failure, lists again (with backoff on failures).

Why not kopf's watches: kopf hands events to handlers one object at a time, through a task per
object, and never says when a re-list begins or ends, so a deletion missed in a gap cannot be
told from an object that simply did not change; its per-object machinery was also the largest
CPU cost at start-up (notes/controller.md). Here parsing, trimming and encoding happen on the
informer's own thread; the event loop only stores and enqueues.

The thread talks to the controller through ``deliver``, which must be thread-safe (the
controller passes ``loop.call_soon_threadsafe``). A failure the informer cannot handle ends the
thread and is delivered as :class:`Died`: the controller turns it into an unhealthy /healthz.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import jsonio
from .cache import Entry, Store
from .client import METADATA_ONLY, ApiError, RestApi
from .kinds import APP, Key, WatchedKind, trim

log = logging.getLogger("pythonapp_operator")

#: objects per page when listing: a page is parsed whole, and 50 Deployments with their
#: managedFields are ~3.5 MB of dicts
LIST_PAGE = 50
#: a watch request ends server-side after this long and is resumed (no silent stalls)
WATCH_SECONDS = 300
#: backoff after a failed list or watch: from the first to the last, doubling
BACKOFF = (0.5, 10.0)


@dataclass(frozen=True)
class Listed:
    """A complete listing of ``kind`` in ``namespace`` (None: every namespace)."""

    kind: WatchedKind
    namespace: str | None
    items: list[tuple[Key, Entry]]
    resource_version: str


@dataclass(frozen=True)
class Event:
    """One watch event. ``entry`` is None for DELETED (the uid and version say which object),
    and for an object the cache already held at that version (nothing to store)."""

    kind: WatchedKind
    type: str
    key: Key
    uid: str | None
    resource_version: str | None
    entry: Entry | None


@dataclass(frozen=True)
class Missing:
    """The kind is not served (the PythonApp CRD is not installed, or a kind that may be
    unserved, :attr:`WatchedKind.may_be_unserved`, is not): listed again later."""

    kind: WatchedKind
    namespace: str | None = None


@dataclass(frozen=True)
class Forbidden:
    """RBAC refuses to list an optional kind (:attr:`WatchedKind.optional`): what needs it is
    off until a later listing succeeds (tried again every ``missing_wait``)."""

    kind: WatchedKind
    message: str


@dataclass(frozen=True)
class Died:
    """The informer's thread ended on an error it cannot handle; ``cause`` says which."""

    kind: WatchedKind
    cause: str


Delta = Listed | Event | Missing | Forbidden | Died


class _Relist(Exception):
    """The watch cannot go on from its version: list again."""


@dataclass
class Informer:
    """Lists and watches one kind in one scope, on a thread of its own."""

    kind: WatchedKind
    namespace: str | None
    api: RestApi
    store: Store
    deliver: Callable[[Delta], None]
    watch_seconds: int = WATCH_SECONDS
    page: int = LIST_PAGE
    #: how long to wait before listing a kind that is not served (no CRD) again
    missing_wait: float = BACKOFF[1]
    #: how long to wait before listing an optional kind RBAC refused again (a grant added
    #: later turns its feature on without a restart; no request storm meanwhile)
    forbidden_wait: float = 300.0
    _wait: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def scope(self) -> str:
        return self.namespace or "all namespaces"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{self.kind.plural}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (an open watch ends when the client closes its streams)."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug, not the API server: say so, loudly, and stop
            log.exception("informer died", extra={"kind": self.kind.kind, "namespace": self.scope})
            self.deliver(Died(self.kind, f"{type(exc).__name__}: {exc}"))

    def _loop(self) -> None:
        delay = BACKOFF[0]
        while not self._stop.is_set():
            try:
                version = self._list()
                if version is None:  # not served (no CRD yet), or not allowed
                    self._stop.wait(self._wait)
                    continue
                delay = BACKOFF[0]
                while not self._stop.is_set():
                    version = self._watch(version)
            except _Relist:
                continue  # at once: the API server asked for it
            except ApiError as err:
                if self._stop.is_set():
                    return
                log.warning(
                    "list or watch failed; retrying",
                    extra={
                        "kind": self.kind.kind,
                        "namespace": self.scope,
                        "error": str(err),
                        "retry_in": delay,
                    },
                )
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF[1])

    def _list(self) -> str | None:
        """List the kind, page by page, each page encoded as soon as it is parsed (holding the
        whole listing as dicts would hold the whole cache as dicts, ~5x its compact size)."""
        query = {"limit": str(self.page)}
        if self.kind.selector:
            query["labelSelector"] = self.kind.selector
        items: list[tuple[Key, Entry]] = []
        while True:
            status, data = self.api.request(
                "GET", self.kind.path(self.namespace), query=query, accept=self._accept("List")
            )
            if status == 404 and (self.kind is APP or self.kind.may_be_unserved):
                self.deliver(Missing(self.kind, self.namespace))
                self._wait = self.missing_wait
                return None
            if status == 403 and self.kind.optional:
                self.deliver(Forbidden(self.kind, ApiError.from_response(status, data).message))
                self._wait = self.forbidden_wait
                return None
            if status == 410:  # the continue token expired: start the listing again
                query.pop("continue", None)
                items.clear()
                continue
            if status >= 300:
                raise ApiError.from_response(status, data)
            page = jsonio.loads(data)
            for item in page.get("items") or []:
                items.append(self.store.encode(self.kind, trim(self.kind, item)))
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                version = str(meta.get("resourceVersion", ""))
                self.deliver(Listed(self.kind, self.namespace, items, version))
                return version
            query["continue"] = token

    def _watch(self, version: str) -> str:
        """One watch request from ``version``; returns the last version seen when it ends."""
        query = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_seconds),
        }
        if self.kind.selector:
            query["labelSelector"] = self.kind.selector
        with self.api.stream(
            self.kind.path(self.namespace),
            query=query,
            read_timeout=self.watch_seconds + 30,
            accept=self._accept(""),
        ) as (status, lines):
            if status == 410:
                raise _Relist
            if status == 404 and (self.kind is APP or self.kind.may_be_unserved):
                raise _Relist  # the CRD went away: the listing says so
            if status >= 300:
                raise ApiError.from_response(status, b"".join(lines))
            for line in lines:
                if self._stop.is_set():
                    break
                version = self._event(jsonio.loads(line), version)
        return version

    def _accept(self, suffix: str) -> str:
        """The Accept header: metadata only for kinds that ask for it (a list's is the
        ``...List`` type; a watch's events carry single objects)."""
        return METADATA_ONLY.format(suffix) if self.kind.metadata_only else "application/json"

    def _event(self, event: dict[str, object], version: str) -> str:
        kind_type = str(event.get("type"))
        obj = event.get("object")
        if not isinstance(obj, dict):
            return version
        meta = obj.get("metadata") or {}
        if kind_type == "ERROR":
            if obj.get("code") == 410:
                raise _Relist
            raise ApiError(int(str(obj.get("code") or 0)), "WatchError", str(obj.get("message")))
        rv = meta.get("resourceVersion")
        version = str(rv) if rv else version
        if kind_type == "BOOKMARK" or kind_type not in ("ADDED", "MODIFIED", "DELETED"):
            return version
        key: Key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        uid = meta.get("uid")
        entry = None
        # an echo of the operator's own write, already stored: not even trimmed (a read of the
        # store from this thread; the controller checks again when it stores)
        if kind_type != "DELETED":
            if self.store.holds(self.kind, key, uid, rv):
                return version
            entry = self.store.encode(self.kind, trim(self.kind, obj))[1]
        self.deliver(Event(self.kind, kind_type, key, uid, rv, entry))
        return version
