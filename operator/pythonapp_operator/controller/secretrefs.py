"""The Secrets and ConfigMaps an app references: do they exist, with the keys it maps, and what
is their data's hash. Values are read, hashed and dropped in one function; nothing here keeps one.

ConfigMaps (``spec.config``) go the same way as Secrets, for the same reasons of size: clusters
hold many ConfigMaps the operator never needs (``kube-root-ca.crt`` in every namespace, Helm 2
releases, dashboards and CA bundles of up to 1 MB), so the watch (``kinds.CONFIGMAP``) is by
metadata too and a referenced ConfigMap is read once per resourceVersion. That they are never
secret changes nothing here: a full watch hashed on arrival would parse every ConfigMap written
in scope (leader-election ConfigMaps of older components every few seconds) to serve the few
that are referenced. Measured (a one-off on the dev cluster, 300 ConfigMaps of 100 KB in a
namespace): a full list is 30.1 MB on the wire and 0.13 s of JSON parsing in the operator's
process, the metadata-only list 0.13 MB; either way the cache keeps about 350 bytes per
ConfigMap (name, uid, resourceVersion), so what a full watch would cost is the transfer and the
parsing of every change, for nothing. Image pull Secrets (``spec.imagePullSecrets``) are only
checked for existence, by the watch or a metadata-only look: never read.

Why a metadata-only watch and a read of the referenced Secrets (not a full watch): Secrets
carry no label of ours and clusters are full of large ones (Helm keeps every release as a
Secret of up to 1 MB). The watch (``kinds.SECRET``) asks the API server for each Secret's
metadata alone (``PartialObjectMetadata``): a few hundred bytes per Secret whatever its size,
so unrelated Secrets cost next to nothing. A referenced Secret is read (one GET) only when its
resourceVersion differs from the one its digest was computed at: once per change, shared by
every app that references it. The cache keeps a Secret's name, uid and resourceVersion only
(:func:`.kinds._trim_metadata`): its labels and annotations are dropped as they are parsed (a
``last-applied-configuration`` annotation may hold the values themselves).

Measured (a one-off on the dev cluster, 1,000 Secrets of 100 KB in a namespace): listing them
whole is 100.4 MB and 2.05 s; by metadata 0.44 MB and 0.36 s. A full watch would parse the
100 KB of every Helm release Secret written anywhere the operator watches.

After a restart (or a new leader) the digests held in memory are gone. Rather than read every
referenced Secret again, the operator recalls them from what its Deployments record
(:func:`recall`): the pod template's hash, the keys its env maps, and the resourceVersion they
were read at (``render.SECRET_VERSIONS_ANNOTATION``). While the watch still sees the Secret at
that version, nothing has changed since and the recalled digest stands; a recalled digest
knows only those keys, so an app that needs another key (or a hash it lacks) reads the Secret.

The hash is an HMAC of the data keyed by the Secret's uid: it sits in the pod template's
annotations (``render.SECRET_HASH_PREFIX``), readable by anyone who may read Deployments, and a
plain hash of a short password could be reversed by trying candidates. The uid is known only
to those who may list Secrets (who can read the values anyway), and it is stable across data
changes, so the hash changes exactly when the data does (and when the Secret is re-created).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..render import pod_template


@dataclass(frozen=True)
class SecretDigest:
    """What the operator keeps of one Secret: which keys it has, and a hash of its data.

    Read from the Secret, it is ``complete``. Recalled from a Deployment (:func:`recall`),
    ``keys`` holds only the keys known to exist and ``hash`` may be unknown (None)."""

    uid: str
    resource_version: str
    keys: frozenset[str]
    hash: str | None
    complete: bool = True

    def serves(self, keys: Iterable[str], *, needs_hash: bool) -> bool:
        """It can answer for these keys (and the hash, if needed) without a read."""
        if self.complete:
            return True
        return self.keys.issuperset(keys) and (self.hash is not None or not needs_hash)


def digest(secret: Any) -> SecretDigest:
    """The digest of a Secret as the API server returns it (``data`` base64-encoded). The
    caller drops ``secret`` at once; nothing of a value survives in the result."""
    meta = secret.get("metadata") or {}
    uid = str(meta.get("uid", ""))
    data = secret.get("data") or {}
    mac = hmac.new(uid.encode(), digestmod=hashlib.sha256)
    for key in sorted(data):
        mac.update(key.encode() + b"\0" + str(data[key] or "").encode() + b"\0")
    return SecretDigest(
        uid=uid,
        resource_version=str(meta.get("resourceVersion", "")),
        keys=frozenset(str(k) for k in data),
        hash=mac.hexdigest()[:32],
    )


def configmap_digest(configmap: Any) -> SecretDigest:
    """The digest of a ConfigMap: ``keys`` are those of its ``data`` (the only ones an env var
    can map, ``configMapKeyRef``), the hash covers ``binaryData`` too (its files change)."""
    meta = configmap.get("metadata") or {}
    uid = str(meta.get("uid", ""))
    data = configmap.get("data") or {}
    binary = configmap.get("binaryData") or {}
    mac = hmac.new(uid.encode(), digestmod=hashlib.sha256)
    for key in sorted(data):
        mac.update(key.encode() + b"\0" + str(data[key] or "").encode() + b"\0")
    for key in sorted(binary):
        mac.update(b"\1" + key.encode() + b"\0" + str(binary[key] or "").encode() + b"\0")
    return SecretDigest(
        uid=uid,
        resource_version=str(meta.get("resourceVersion", "")),
        keys=frozenset(str(k) for k in data),
        hash=mac.hexdigest()[:32],
    )


def recorded_versions(deployment: Any, versions_annotation: str) -> dict[str, Any]:
    """What ``deployment`` records of the Secret versions it was built from (name ->
    resourceVersion); {} when it records nothing readable."""
    if not isinstance(deployment, dict):
        return {}
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    try:
        recorded = json.loads(annotations.get(versions_annotation) or "{}")
    except ValueError:
        return {}
    return recorded if isinstance(recorded, dict) else {}


def recall(
    deployment: Any,
    name: str,
    uid: str,
    version: str,
    *,
    hash_annotation: str,
    versions_annotation: str,
    key_ref: str = "secretKeyRef",
) -> SecretDigest | None:
    """The digest of Secret ``name`` as ``deployment`` (the app's own, as cached) records it,
    if it was read at ``version``, the version the watch sees now; else None. (A ConfigMap's:
    its versions annotation, ``key_ref`` ``configMapKeyRef``.)

    The keys are those the Deployment's containers map from it (they existed when it was
    applied, and the Secret has not changed since); the hash is its pod template's, if any."""
    if recorded_versions(deployment, versions_annotation).get(name) != version:
        return None
    template = pod_template(deployment)  # a Deployment's, or a scheduled app's CronJob's
    pod = template.get("spec") or {}
    keys: set[str] = set()
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for env in container.get("env") or []:
            ref = ((env or {}).get("valueFrom") or {}).get(key_ref) or {}
            if ref.get("name") == name and isinstance(ref.get("key"), str):
                keys.add(ref["key"])
    hashed = ((template.get("metadata") or {}).get("annotations") or {}).get(hash_annotation)
    return SecretDigest(
        uid=uid,
        resource_version=version,
        keys=frozenset(keys),
        hash=hashed if isinstance(hashed, str) else None,
        complete=False,
    )


#: reads one Secret (or ConfigMap) and returns its digest (None if it does not exist)
DigestSource = Callable[[str, str], SecretDigest | None]


class Digests:
    """Digests of referenced Secrets (or, another instance, ConfigMaps) by (namespace, name),
    shared by every app's reconcile (they run on several threads): each is read once per
    resourceVersion."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], SecretDigest] = {}
        self._lock = threading.Lock()

    def get(
        self,
        source: DigestSource,
        namespace: str,
        name: str,
        uid: str | None = None,
        version: str | None = None,
        *,
        recalled: SecretDigest | None = None,
        keys: Iterable[str] = (),
        needs_hash: bool = False,
    ) -> SecretDigest | None:
        """The digest of the Secret the watch last saw as (``uid``, ``version``), able to
        answer for ``keys`` (and its hash if ``needs_hash``); read anew when the one held is
        older or knows too little, or when the watch has not seen it (``uid`` None: it may be
        behind, a Secret applied with its app often arrives after it). ``recalled`` (from a
        Deployment, :func:`recall`) stands in for a read when it is at that version and knows
        enough. None: it is gone."""
        keys = tuple(keys)
        if uid is not None:
            with self._lock:
                held = self._held.get((namespace, name))
            for known in (held, recalled):
                if (
                    known is not None
                    and (known.uid, known.resource_version) == (uid, version)
                    and known.serves(keys, needs_hash=needs_hash)
                ):
                    if known is recalled:
                        with self._lock:
                            self._held[namespace, name] = known
                    return known
        found = source(namespace, name)
        with self._lock:
            if found is None:
                self._held.pop((namespace, name), None)
            else:
                self._held[namespace, name] = found
        return found

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._held.pop((namespace, name), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
