"""An in-memory stand-in for the API server behind :class:`KubeApi`, for fast unit tests.

It keeps what reconcile's rules depend on: server-side apply creates or updates and bumps the
resourceVersion only when something changed; ``metadata.uid`` in an apply is a precondition
(422 on another object, 409 when there is none, as the real server answers), and an apply
without one only creates (409 when the name is held, as the operator's create-only
resourceVersion makes the real server answer); deletes honour the uid precondition; a status
write replaces the whole status, of the app with its uid only (422 on a same-name successor,
404 when none is there); a Deployment whose spec an apply changes gets a new generation; errors
can be injected per kind. A Deployment's ``spec.replicas`` keeps its managers as server-side
apply does: an apply that stops carrying it removes it (the server then defaults it to 1)
unless another manager (the hand-over, an autoscaler: see :meth:`FakeApi.scale`) still holds
it. Behaviour only the real server has
(defaults, admission, garbage collection) is tested on the real API server in tests/e2e.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pythonapp_operator.controller.client import ApiError
from pythonapp_operator.controller.secretrefs import SecretDigest, configmap_digest, digest

Obj = dict[str, Any]
#: the real API server's answer to a JSON patch whose ``test`` operation failed
REPLACED = "the server rejected our request due to an error in our request"


@dataclass
class FakeApi:
    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (kind, ns, name)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (verb, kind)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    refuse: dict[tuple[str, str], ApiError] = field(default_factory=dict)  # (verb, kind) -> error
    #: a hook that changes what the "server" stores on apply (e.g. re-spell a value)
    normalise: Callable[[Obj], None] | None = None
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    #: (ns, name) of a Deployment -> the managers holding its spec.replicas
    replicas_managers: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    # -- helpers for tests -------------------------------------------------------------------
    def put(self, obj: Obj) -> Obj:
        """Store an object as if someone else created it."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(next(self._rv))
        self.objects[obj["kind"], meta["namespace"], meta["name"]] = obj
        return copy.deepcopy(obj)

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in ("apply", "delete", "patch_status", "handover")]

    def scale(self, namespace: str, name: str, replicas: int, manager: str = "hpa") -> None:
        """Another writer (an autoscaler, ``kubectl scale``) sets a Deployment's replicas
        through /scale: it takes the field from every other manager."""
        live = self.objects["Deployment", namespace, name]
        live["spec"]["replicas"] = replicas
        live["metadata"]["resourceVersion"] = str(next(self._rv))
        self.replicas_managers[namespace, name] = {manager}

    def _replicas(self, manifest: Obj, live: Obj | None, new: Obj) -> None:
        """spec.replicas of a Deployment after an apply by the operator (manager "operator")."""
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        managers = self.replicas_managers.setdefault(key, set())
        if "replicas" in manifest.get("spec", {}):
            managers.clear()  # forced: the operator takes it
            managers.add("operator")
            return
        managers.discard("operator")
        old = (live or {}).get("spec", {}).get("replicas")
        # kept while another manager holds it; removed (then defaulted) otherwise
        new["spec"]["replicas"] = old if managers and old is not None else 1

    def _check(self, verb: str, kind: str) -> None:
        self.calls.append((verb, kind))
        err = self.refuse.get((verb, kind))
        if err is not None:
            raise err

    # -- KubeApi -----------------------------------------------------------------------------
    def apply(self, manifest: Obj, *, uid: str | None) -> Obj:
        kind, meta = manifest["kind"], manifest["metadata"]
        self._check("apply", kind)
        key = (kind, meta["namespace"], meta["name"])
        live = self.objects.get(key)
        if live is None and uid is not None:
            raise ApiError(
                409,
                "Conflict",
                f"uid mismatch: the provided object specified uid {uid}, and no existing "
                "object was found",
            )
        if live is not None and uid is None:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.lower()}s "{meta["name"]}": the object '
                "has been modified; please apply your changes to the latest version and try again",
            )
        if live is not None and uid is not None and live["metadata"]["uid"] != uid:
            raise ApiError(
                422,
                "Invalid",
                f'{kind} "{meta["name"]}" is invalid: metadata.uid: Invalid value: "{uid}": '
                "field is immutable",
                [{"field": "metadata.uid", "reason": "FieldValueInvalid"}],
            )
        new = copy.deepcopy(manifest)
        new["metadata"]["uid"] = live["metadata"]["uid"] if live else str(uuid.uuid4())
        if live is not None:
            # fields another manager set and the apply does not mention survive
            for k, v in live["metadata"].get("annotations", {}).items():
                new["metadata"].setdefault("annotations", {}).setdefault(k, v)
            if "status" in live:
                new["status"] = live["status"]
        if kind == "Deployment":
            self._replicas(manifest, live, new)
        if self.normalise is not None:
            self.normalise(new)
        if kind == "Deployment":  # a new spec is a new generation, as the real server counts
            before = (live or {}).get("metadata") or {}
            if live is None or new.get("spec") != live.get("spec"):
                new["metadata"]["generation"] = before.get("generation", 0) + 1
            elif "generation" in before:
                new["metadata"]["generation"] = before["generation"]
        comparable = {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}
        if live is not None and {
            **live,
            "metadata": {k: v for k, v in live["metadata"].items() if k != "resourceVersion"},
        } == {**new, "metadata": comparable}:
            return copy.deepcopy(live)  # a no-op apply: nothing stored, same resourceVersion
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[key] = new
        return copy.deepcopy(new)

    def hand_over_replicas(self, namespace: str, name: str, uid: str, replicas: int) -> None:
        self._check("handover", "Deployment")
        live = self.objects.get(("Deployment", namespace, name))
        if live is None or live["metadata"]["uid"] != uid:
            raise ApiError(409, "Conflict", "no existing object was found")
        managers = self.replicas_managers.setdefault((namespace, name), set())
        if live["spec"].get("replicas") == replicas:
            managers.add("handover")  # the same value: shared, no conflict
        elif not managers:
            live["spec"]["replicas"] = replicas
            managers.add("handover")
        # else: a conflict with the manager holding another count, which keeps it

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        self._check("delete", kind)
        live = self.objects.get((kind, namespace, name))
        if live is None:
            return
        if live["metadata"]["uid"] != uid:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition")
        del self.objects[kind, namespace, name]

    def patch_status(self, namespace: str, name: str, status: Obj, uid: str) -> Obj:
        self._check("patch_status", "PythonApp")
        live = self.objects.get(("PythonApp", namespace, name))
        if live is None:
            raise ApiError(404, "NotFound", "not found")
        if live["metadata"]["uid"] != uid:  # the uid test of the JSON patch failed
            raise ApiError(422, "Invalid", REPLACED)
        live["status"] = copy.deepcopy(status)
        live["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(live)

    def event(self, app: Obj, event_type: str, reason: str, message: str, now: str) -> None:
        self._check("event", "Event")
        self.events.append((event_type, reason, message))

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self._check("get", kind)
        live = self.objects.get((kind, namespace, name))
        return copy.deepcopy(live) if live is not None else None

    def secret_digest(self, namespace: str, name: str) -> SecretDigest | None:
        self._check("get", "Secret")
        live = self.objects.get(("Secret", namespace, name))
        return digest(live) if live is not None else None

    def configmap_digest(self, namespace: str, name: str) -> SecretDigest | None:
        self._check("get", "ConfigMap")
        live = self.objects.get(("ConfigMap", namespace, name))
        return configmap_digest(live) if live is not None else None

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        self._check("get_metadata", kind)
        return (kind, namespace, name) in self.objects
