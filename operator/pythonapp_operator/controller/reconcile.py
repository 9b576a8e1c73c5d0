"""One level-based, idempotent reconcile of one PythonApp: (cached app, cached children) -> writes.

Every cause (the app created, changed or listed at start-up, a child changed or deleted, the
periodic resync, a retry) ends here, with the same steps each time:

1. validate the cached app with the models; invalid -> report it (Stalled/InvalidSpec, one
   Warning event per verdict) and touch nothing else: what runs keeps running. The same for a
   valid app the platform policy (:mod:`..platformpolicy`) does not admit, e.g. one created
   before the policy said so (Stalled/PolicyViolation); an admitted one is rendered with the
   policy's defaults;
2. render the full desired set (pure) and apply it in stages, the Deployment last: a child
   that is missing, changed or drifted is server-side applied (one field manager, force).
   The ServiceAccount, NetworkPolicy, Service and PodDisruptionBudget are one stage, applied
   at once (:mod:`.fanout`); the Deployment follows only when all of them were written.
   Hardening another writer weakened (:mod:`.hardening`) is drift too where the operator
   renders the field (a forced apply puts it back); where it does not, the app reports it
   (HardeningDrift) rather than fight that writer;
3. a child name held by an object this app does not control is never written: the app reports
   ``NotOwned`` and the Deployment is not applied. Every apply carries a precondition the API
   server checks in the same request, so no moment is left for a takeover: a cached child
   must carry this app's controller reference and is applied with its uid (an object
   replaced under the same name is refused with 422, never changed); a child not in the cache
   (which holds every managed object) is applied create-only (refused with 409 when any
   object holds the name, see :data:`.client.CREATE_ONLY`). Only a refused precondition
   makes the operator look (GET) at what holds the name;
4. any refusal or error stops the walk, goes onto the status with a stable reason and the API
   server's message (one Warning event per new failure) and is retried by the queue with backoff;
5. owned children the desired set no longer holds are deleted (uid precondition);
   autoscaling: the Deployment is applied without ``replicas`` while an HPA owns them, each
   time after a hand-over of the field at its running value (:func:`_hand_over_replicas`), so
   neither switching on nor a later apply moves the count the HPA or a person set; switched off,
   ``replicas`` is applied (forced) again and the HPA removed;
   migrations (``spec.migrate``): the gate (:mod:`.migration`) decides from the cached Jobs
   which image the Deployment is rendered with (the running one until the new image's Job is
   Complete; none for a new app before), and after the other children its Job is created
   (create-only) and a superseded running one deleted;
   scheduled apps (``profile: cron``) get a CronJob in the Deployment's place; a switch of
   profile removes the other workload with the rest of the stale children; operator upgrades
   (:mod:`.rollouts`): a Deployment whose pod template changes for no change of the app's own
   (same generation, image and Secret checksums, hardening intact) is applied only with a slot
   of the shared rollout gate; without one it is left as it is, the app says
   ``RolloutQueued`` and waits; the slot is given back once its rollout finished;
6. the status is computed from the cached Deployment (or CronJob, with its runs:
   :mod:`.cron`) and patched only if it differs.

Reads come from the snapshot the caller took from the cache; the only GET is for a name
conflict. A new app costs two round trips (its isolation, then its Deployment) and no read; a
reconcile that finds everything in place makes no request at all.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from .. import GROUP, KIND
from ..api.models import PythonApp
from ..api.policy import PythonAppPolicySpec
from ..api.validation import validate_document
from ..platformpolicy import violations, with_defaults
from ..render import (
    CONFIG_HASH_PREFIX,
    CONFIG_VERSIONS_ANNOTATION,
    SECRET_HASH_PREFIX,
    SECRET_VERSIONS_ANNOTATION,
    config_volume_name,
    pod_template,
    render,
    volume_name,
)
from ..routing import Routing
from . import cron, failures, hardening, migration, pods, rollouts, routes
from .client import ApiError, KubeApi
from .compare import desired_hash, fingerprint, is_subset, needs_apply, with_hash
from .fanout import Fanout, sequential
from .hardening import Finding
from .kinds import (
    APP,
    CHILD_KINDS,
    KINDS_BY_KIND,
    WORKLOAD_KINDS,
    Obj,
    WatchedKind,
    apply_order,
    controller_of,
    is_controlled_by,
)
from .secretrefs import Digests, SecretDigest, recall, recorded_versions
from .status import (
    INVALID_SPEC,
    POLICY_VIOLATION,
    Failure,
    compute_status,
    foreign_fields,
    readable,
    status_differs,
)

log = logging.getLogger(__name__)


#: the referenced objects of one kind as the watch saw them: (name, (uid, version) or None)
_RefState = tuple[tuple[str, tuple[str, str] | None], ...] | None


@dataclass
class Memory:
    """What the reconciles of one app remember between runs, so a converged app costs next to
    nothing.

    - ``plan``: (uid, generation, the desired hash of each child by kind, or None for an
      invalid spec, its problems): the spec is validated and rendered once per generation;
    - ``verified``: per child kind, (desired hash, cache content version) last found in sync: a
      child whose content has not changed since (only its status did) is not compared again;
    - ``settled``: per child kind, (desired hash, fingerprint) of a state the API server
      answered an apply with unchanged although the subset test calls it drift (its own
      spelling), or with hardening findings a forced apply did not remove;
    - ``secrets``: the referenced Secrets' (uid, version) the plan was made with: a Secret
      that appears, changes or goes makes a new plan (checked and hashed again);
    - ``hardened``: per child kind, the hardening findings (:mod:`.hardening`) its last check
      left to report, for the content version in ``verified``: a converged app keeps
      reporting them without checking again.

    One per app, handed to that app's reconcile (one at a time per app) by the controller,
    which keeps them by key on its own thread and drops one when its app goes: nothing here is
    shared between apps or iterated across threads.
    """

    uid: str | None = None
    plan: tuple[str, int, dict[str, str] | None, list[str]] | None = None
    #: the referenced Secrets' and ConfigMaps' versions the plan was made with (a change makes
    #: a new plan)
    secrets: tuple[_RefState, _RefState] | None = None
    verified: dict[str, tuple[str, int]] = field(default_factory=dict)
    settled: dict[str, tuple[str, str]] = field(default_factory=dict)
    hardened: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    #: the migrations gate's inputs beyond the spec (:func:`.migration.token`) and its decision,
    #: as the plan was made with them: a Job that ends makes a new plan
    gate: tuple[str | None, migration.Gate | None] = (None, None)
    #: what decided the route of spec.expose when the plan was made (a change makes a new one)
    routing: Routing | None = None
    #: the platform policy the plan was made under (a change makes a new one), and the reason
    #: of a plan's problems (InvalidSpec, or PolicyViolation)
    policy: PythonAppPolicySpec | None = None
    problems_reason: str = INVALID_SPEC

    def claim(self, uid: str) -> None:
        """Start afresh when the app under this name is another object (deleted, re-created)."""
        if self.uid != uid:
            self.uid, self.plan, self.secrets = uid, None, None
            self.gate = (None, None)
            self.verified.clear()
            self.settled.clear()
            self.hardened.clear()


def utc_now() -> str:
    """RFC 3339 in UTC, seconds precision (what Kubernetes uses)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Snapshot:
    """What one reconcile reads: the app and its children (by kind) as cached, with each
    child's content version (:attr:`Store.versions`)."""

    app: Obj
    children: dict[str, Obj]
    versions: dict[str, int] = field(default_factory=dict)
    #: what the cluster says of the app's pods: its ReplicaSets and Pods, by kind
    #: (:data:`.kinds.OBSERVED_KINDS`), read by the status only
    observed: dict[str, list[Obj]] = field(default_factory=dict)
    #: the Secrets the spec references, as the watch last saw them: name -> (uid,
    #: resourceVersion), None when it does not exist. None as a whole: the operator may not
    #: read Secrets, and the Secret check and rotation are off
    secrets: dict[str, tuple[str, str] | None] | None = None
    #: the same for the ConfigMaps the spec references (None: the ConfigMap check is off)
    configmaps: dict[str, tuple[str, str] | None] | None = None
    #: what decides the route of spec.expose: the platform's defaults, and whether the cluster
    #: serves the Gateway API (:mod:`..routing`)
    routing: Routing = field(default_factory=Routing)
    #: the platform policy (PythonAppPolicy ``cluster``), None without one
    policy: PythonAppPolicySpec | None = None


@dataclass
class Outcome:
    """What one reconcile did; the worker feeds ``written``/``deleted`` back into the cache."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_patched: bool = False
    problems: list[str] = field(default_factory=list)
    #: why ``problems`` stop the app: InvalidSpec, or PolicyViolation
    problems_reason: str = INVALID_SPEC
    failure: Failure | None = None
    #: hardening others weakened where putting it back would fight them: (kind, name, finding)
    hardening: list[tuple[str, str, Finding]] = field(default_factory=list)
    #: nothing to do: the app is being deleted, or its namespace is
    gone: bool = False
    #: look again after this many seconds though nothing changes (a readiness grace running out)
    recheck_after: float | None = None
    #: the Deployment was left as it is: its render-only rollout waits for a slot
    queued: bool = False
    #: this app gave back a rollout slot: the controller offers it to a waiting app
    released: bool = False
    written: list[tuple[WatchedKind, Obj]] = field(default_factory=list)
    removed: list[tuple[WatchedKind, str, str, str]] = field(default_factory=list)

    @property
    def writes(self) -> int:
        """Writes this reconcile made (events not counted)."""
        return len(self.applied) + len(self.deleted) + int(self.status_patched)


class _Stop(Exception):
    """The walk over the children stops here (a failure, or the namespace is going away)."""


@dataclass
class _Run:
    api: KubeApi
    snap: Snapshot
    memory: Memory
    now: Callable[[], str]
    fanout: Fanout = sequential
    digests: Digests | None = None
    config_digests: Digests | None = None
    out: Outcome = field(default_factory=Outcome)
    #: the migrations gate's decision (None: invalid spec, or not reached)
    gate: migration.Gate | None = None
    #: the gate's inputs beyond the spec, read once per reconcile
    gate_token: str | None = None
    #: the operator-upgrade rollout gate (None: render-only rollouts are not paced)
    pacer: rollouts.RolloutGate | None = None
    #: the test seam's render epoch (:data:`.rollouts.RENDER_EPOCH_ANNOTATION`), if any
    epoch: str | None = None

    @property
    def meta(self) -> Obj:
        meta: Obj = self.snap.app["metadata"]
        return meta

    def event(self, event_type: str, reason: str, message: str) -> None:
        try:
            self.api.event(self.snap.app, event_type, reason, message, self.now())
        except ApiError as err:  # an event is best effort; the status carries the truth
            log.warning(
                "could not post an event",
                extra={"app": self.key, "reason": reason, "error": str(err)},
            )

    @property
    def key(self) -> str:
        return f"{self.meta['namespace']}/{self.meta['name']}"

    @property
    def app_key(self) -> tuple[str, str]:
        return (self.meta["namespace"], self.meta["name"])

    def fail(self, failure: Failure) -> NoReturn:
        self.out.failure = failure
        raise _Stop

    def api_error(self, err: ApiError, kind: str, name: str, verb: str) -> NoReturn:
        if err.namespace_terminating:
            self.out.gone = True  # the namespace is being deleted: nothing to report, quietly
            raise _Stop
        self.fail(failures.from_api_error(err, kind, name, verb))


def reconcile(
    api: KubeApi,
    snap: Snapshot,
    memory: Memory,
    now: Callable[[], str] = utc_now,
    fanout: Fanout = sequential,
    *,
    digests: Digests | None = None,
    config_digests: Digests | None = None,
    pacer: rollouts.RolloutGate | None = None,
    epoch: str | None = None,
) -> Outcome:
    """Bring one PythonApp's children and status in line with its spec (see the module doc).

    ``fanout`` makes the calls that do not depend on each other (the applies of one stage);
    :func:`~.fanout.sequential` makes them in turn. ``digests`` holds what is known of the
    referenced Secrets (:mod:`.secretrefs`), shared between apps; ``config_digests`` of the
    referenced ConfigMaps. ``pacer`` paces render-only rollouts (:mod:`.rollouts`), shared
    between apps; ``epoch`` is its test seam.
    """
    # not `digests or ...`: an empty Digests is falsy (it has a length), and a fresh one per
    # reconcile would read every Secret again each time
    run = _Run(
        api,
        snap,
        memory,
        now,
        fanout,
        Digests() if digests is None else digests,
        Digests() if config_digests is None else config_digests,
    )
    run.pacer, run.epoch = pacer, epoch
    meta = run.meta
    memory.claim(meta["uid"])
    if meta.get("deletionTimestamp"):
        run.out.gone = True  # garbage collection removes the children
        return run.out
    workload_obj: Obj | None = None  # the live Deployment, or a scheduled app's CronJob
    run.gate_token = migration.token(
        snap.app,
        _owned(snap.children.get("Deployment"), meta["uid"]),
        snap.observed.get("Job", []),
        snap.observed.get("Pod", []),
    )
    workload = workload_kind(snap.app)
    try:
        plan = _known_plan(run)
        if plan is not None and plan[2] is None:  # invalid, as already found
            run.out.problems = list(plan[3])
            run.out.problems_reason = memory.problems_reason
            workload_obj = _owned(snap.children.get(workload), meta["uid"])
        elif plan is not None and _all_verified(run, plan[2] or {}):
            workload_obj = snap.children.get(workload)  # converged: nothing to compare
            run.gate = memory.gate[1]
            _report_hardening(run, plan[2] or {})
        else:
            app, problems = validate_document({k: v for k, v in snap.app.items() if k != "status"})
            memory.policy = snap.policy
            if app is not None and snap.policy is not None:
                problems = violations(app, snap.policy)
                memory.problems_reason = POLICY_VIOLATION
            else:
                memory.problems_reason = INVALID_SPEC
            if app is None or problems:
                run.out.problems = [f"{p.path}: {p.message}" for p in problems]
                run.out.problems_reason = memory.problems_reason
                memory.plan = (meta["uid"], meta.get("generation", 0), None, run.out.problems)
                workload_obj = _owned(snap.children.get(workload), meta["uid"])
            else:
                # the Secret check is the app's own references; the policy's default pull
                # Secrets are the platform's to provide (:mod:`..platformpolicy`)
                checked = _check_references(run, app)
                gate = run.gate = _decide_gate(run, app)
                generation = meta.get("generation")
                desired = apply_order(
                    [
                        rollouts.stamp(m, generation, epoch)
                        for m in render(
                            with_defaults(app, snap.policy),
                            checked.secret_hashes,
                            checked.secret_versions,
                            config_hashes=checked.config_hashes,
                            config_versions=checked.config_versions,
                            image=gate.image,
                            migrated=gate.migrated,
                            deploy=gate.deploy,
                            routing=snap.routing,
                        )
                        if m["kind"] != "Job"  # the gate's, created by _run_gate
                    ]
                )
                hashes = {m["kind"]: desired_hash(m) for m in desired}
                memory.plan = (meta["uid"], meta.get("generation", 0), hashes, [])
                memory.secrets = _secret_state(snap)
                memory.routing = snap.routing
                memory.gate = (run.gate_token, None)  # the decision is kept once carried out
                workload_obj = _apply_children(run, desired, hashes)
                _report_hardening(run, hashes)
                _remove_stale(run, set(hashes))
                _run_gate(run, gate)
                memory.gate = (run.gate_token, gate)
    except _Stop:
        if run.out.gone:
            return run.out
        workload_obj = _owned(snap.children.get(workload), meta["uid"])
    _settle_rollout(run, workload_obj if workload == "Deployment" else None)
    _sync_status(run, workload_obj)
    return run.out


def _settle_rollout(run: _Run, deployment: Obj | None) -> None:
    """The app's place in the rollout gate after this reconcile: a slot is given back once
    its rollout finished, the Deployment went or the spec moved on (a new generation: the
    author's change, never paced, took over); an app that no longer waits stops waiting."""
    pacer = run.pacer
    if pacer is None:
        return
    key = run.app_key
    if not run.out.queued:
        pacer.withdraw(key)
    held = pacer.holds(key)
    if held is None:
        return
    if deployment is None:
        why = "the Deployment is gone"
    elif held != run.meta.get("generation"):
        why = "the spec changed"
    elif rollouts.rollout_finished(deployment):
        why = "rollout finished"
    else:
        return
    run.out.released = pacer.release(key, why)


def _known_plan(run: _Run) -> tuple[str, int, dict[str, str] | None, list[str]] | None:
    meta = run.meta
    plan = run.memory.plan
    if plan is None or plan[:2] != (meta["uid"], meta.get("generation", 0)):
        return None
    if run.memory.policy != run.snap.policy:
        return None  # the platform policy changed: its defaults and its verdict may too
    if plan[2] is not None and (
        run.memory.gate[0] != run.gate_token
        or (run.gate_token is not None and run.memory.gate[1] is None)
    ):
        return None  # the migrations gate's inputs moved (a Job ended), or it was not carried out
    if plan[2] is not None and run.memory.secrets != _secret_state(run.snap):
        return None  # a referenced Secret appeared, changed or went: check and hash again
    if plan[2] is not None and run.memory.routing != run.snap.routing:
        return None  # the Gateway API appeared or went: the route changes kind
    return plan


def _secret_state(snap: Snapshot) -> tuple[_RefState, _RefState]:
    """The referenced Secrets' and ConfigMaps' versions, as the plan depends on them."""
    return _ref_state(snap.secrets), _ref_state(snap.configmaps)


def _ref_state(seen: dict[str, tuple[str, str] | None] | None) -> _RefState:
    return None if seen is None else tuple(sorted(seen.items()))


@dataclass(frozen=True)
class _Referenced:
    """How one kind of referenced object (Secrets of ``spec.secrets``, ConfigMaps of
    ``spec.config``) is checked, hashed and recorded on the Deployment."""

    kind: str
    field: str
    key_ref: str
    versions_annotation: str
    hash_annotation: Callable[[str], str]


_SECRETS = _Referenced(
    "Secret",
    "secrets",
    "secretKeyRef",
    SECRET_VERSIONS_ANNOTATION,
    lambda name: SECRET_HASH_PREFIX + volume_name(name),
)
_CONFIG = _Referenced(
    "ConfigMap",
    "config",
    "configMapKeyRef",
    CONFIG_VERSIONS_ANNOTATION,
    lambda name: CONFIG_HASH_PREFIX + config_volume_name(name),
)


@dataclass
class _Checked:
    """What checking the references found: the hashes and versions to render, by kind."""

    secret_hashes: dict[str, str] = field(default_factory=dict)
    secret_versions: dict[str, str] = field(default_factory=dict)
    config_hashes: dict[str, str] = field(default_factory=dict)
    config_versions: dict[str, str] = field(default_factory=dict)


def _check_references(run: _Run, app: PythonApp) -> _Checked:
    """The referenced Secrets, image pull Secrets and ConfigMaps, checked before anything is
    applied: one missing (or a key the spec maps from it) fails the app with SecretMissing or
    ConfigMissing, naming each: the pods would never start (CreateContainerConfigError,
    ImagePullBackOff), and a running version keeps serving. Each kind's check is off where
    the operator may not list it (the Snapshot holds None for it)."""
    checked = _Checked()
    #: spec field -> what it names that is missing
    missing: dict[str, list[str]] = {}
    kind = workload_kind(run.snap.app)  # where the pods' hashes and versions are recorded
    live = _owned(run.snap.children.get(kind), run.meta["uid"])
    if run.snap.secrets is not None and run.digests is not None:
        refs = [(r.name, [v.key for v in r.env], r.rotation) for r in app.spec.secrets]
        checked.secret_hashes, checked.secret_versions, missing["spec.secrets"] = _read_references(
            run,
            _SECRETS,
            refs,
            seen=run.snap.secrets,
            digests=run.digests,
            read=run.api.secret_digest,
            live=live,
        )
        missing["spec.imagePullSecrets"] = _missing_pull_secrets(run, app, run.snap.secrets)
    if run.snap.configmaps is not None and run.config_digests is not None:
        refs = [(r.name, [v.key for v in r.env], r.rotation) for r in app.spec.config]
        checked.config_hashes, checked.config_versions, missing["spec.config"] = _read_references(
            run,
            _CONFIG,
            refs,
            seen=run.snap.configmaps,
            digests=run.config_digests,
            read=run.api.configmap_digest,
            live=live,
        )
    fields = [name for name, said in missing.items() if said]
    if fields:
        said = "; ".join(m for name in fields for m in missing[name])
        running = run.snap.children.get(kind) is not None
        if fields == ["spec.config"]:
            run.fail(failures.config_missing(said, running=running))
        # a Secret first: what a person must create first is said by the reason
        run.fail(failures.secret_missing(said, running=running, fields=" or ".join(fields)))
    return checked


def _read_references(
    run: _Run,
    how: _Referenced,
    refs: Sequence[tuple[str, list[str], str]],
    *,
    seen: dict[str, tuple[str, str] | None],
    digests: Digests,
    read: Callable[[str, str], SecretDigest | None],
    live: Obj | None,
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """For each (name, mapped keys, rotation): the hash of its data (for ``rotation:
    restart``), the version to record on the workload (:func:`_recorded_versions`), and what
    is missing. An object is read only for
    what needs its content (mapped keys, rotation), once per version; not at all when the
    app's Deployment recorded this version already (:func:`.secretrefs.recall`)."""
    namespace = run.meta["namespace"]
    hashes: dict[str, str] = {}
    versions: dict[str, str] = {}
    missing: list[str] = []
    for index, (name, keys, rotation) in enumerate(refs):
        held = seen.get(name)
        if held is not None and not keys and rotation != "restart":
            continue  # it exists, and nothing needs its content
        needs_hash = rotation == "restart"
        recalled = None
        if held is not None:
            recalled = recall(
                live,
                name,
                *held,
                hash_annotation=how.hash_annotation(name),
                versions_annotation=how.versions_annotation,
                key_ref=how.key_ref,
            )
        try:
            # not in the cache: one look before saying it is missing (the watch may be
            # behind: an object applied with its app often arrives just after it)
            found = digests.get(
                read,
                namespace,
                name,
                *(held or (None, None)),
                recalled=recalled,
                keys=keys,
                needs_hash=needs_hash,
            )
        except ApiError as err:
            run.api_error(err, how.kind, name, "get")
        if found is None:
            missing.append(f"{how.kind} {name} (spec.{how.field}[{index}]) does not exist")
            continue
        absent = [k for k in keys if k not in found.keys]
        if absent:
            missing.append(
                f"{how.kind} {name} has no key {', '.join(absent)} (spec.{how.field}[{index}].env)"
            )
        if needs_hash and found.hash is not None:
            hashes[name] = found.hash
        versions[name] = found.resource_version
    return hashes, _recorded_versions(live, how, hashes, versions), missing


def _missing_pull_secrets(
    run: _Run, app: PythonApp, seen: dict[str, tuple[str, str] | None]
) -> list[str]:
    """The image pull Secrets that do not exist. Never read (used at pull time only, so their
    data rolls nothing): the watch says whether one exists, and one not seen yet gets a
    metadata-only look (it may be just behind)."""
    missing: list[str] = []
    for index, ref in enumerate(app.spec.image_pull_secrets):
        if seen.get(ref.name) is not None:
            continue
        try:
            there = run.api.exists("Secret", run.meta["namespace"], ref.name)
        except ApiError as err:
            run.api_error(err, "Secret", ref.name, "get")
        if not there:
            missing.append(f"Secret {ref.name} (spec.imagePullSecrets[{index}]) does not exist")
    return missing


def _recorded_versions(
    live: Obj | None, how: _Referenced, hashes: dict[str, str], versions: dict[str, str]
) -> dict[str, str]:
    """The versions to record on the Deployment: the one already recorded while what the
    Deployment depends on is unchanged (its hash; without rotation, its mapped keys, checked
    already), so a change to an object's labels alone, which moves its resourceVersion,
    writes nothing; else the version just read."""
    recorded = recorded_versions(live, how.versions_annotation)
    template = pod_template(live)
    live_hashes = (template.get("metadata") or {}).get("annotations") or {}
    out: dict[str, str] = {}
    for name, version in versions.items():
        before = recorded.get(name)
        same = name not in hashes or live_hashes.get(how.hash_annotation(name)) == hashes[name]
        out[name] = before if isinstance(before, str) and same else version
    return out


def _all_verified(run: _Run, hashes: dict[str, str]) -> bool:
    """Every child exists, is ours and unchanged since it was last found in sync; no stale
    child of another kind is left."""
    meta = run.meta
    for kind, held in run.snap.children.items():
        if kind not in hashes and is_controlled_by(held, meta["uid"]):
            return False  # a stale child to remove
    for kind, digest in hashes.items():
        child = run.snap.children.get(kind)
        if child is None or not is_controlled_by(child, meta["uid"]):
            return False
        if run.memory.verified.get(kind) != (digest, run.snap.versions.get(kind, 0)):
            return False
    return True


def _owned(obj: Obj | None, uid: str) -> Obj | None:
    return obj if obj is not None and is_controlled_by(obj, uid) else None


@dataclass
class _Step:
    """One child to write: its manifest, what the cache holds under its name, and why."""

    manifest: Obj
    live: Obj | None
    why: str
    #: a render-only rollout the gate admitted: the apply records it (a restart finds it)
    paced: bool = False
    #: an autoscaled Deployment's count when the apply creates it: the HPA's minReplicas
    initial_replicas: int | None = None

    @property
    def kind(self) -> str:
        kind: str = self.manifest["kind"]
        return kind

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name

    @property
    def kind_order(self) -> int:
        return KINDS_BY_KIND[self.kind].order

    @property
    def memo_key(self) -> str:
        """The child's key in the app's :class:`Memory` (one child per kind)."""
        return self.kind


class _NotOwned(Exception):
    """A write found the child's name held by an object this app does not control."""

    def __init__(self, other: Obj) -> None:
        super().__init__("not owned")
        self.other = other


def _apply_children(run: _Run, desired: list[Obj], hashes: dict[str, str]) -> Obj | None:
    """Apply what is missing, changed or drifted, stage by stage; returns the live workload
    (the Deployment, or a scheduled app's CronJob).

    The children of one stage are applied at once; a later stage is applied only when every
    child before it was written: the Deployment, last, never runs without its isolation.
    """
    uid = run.meta["uid"]
    deployment: Obj | None = None
    steps: list[_Step] = []
    for manifest in desired:
        kind = manifest["kind"]
        digest = hashes[kind]
        step = _Step(
            manifest,
            run.snap.children.get(kind),
            "",
            initial_replicas=initial_replicas(manifest, desired),
        )
        live = step.live
        version = run.snap.versions.get(kind, 0)
        if live is not None and not is_controlled_by(live, uid):
            # The cache says someone else holds the name; it may be behind (the other object
            # gone, this app's own child created meanwhile): one look before stalling the app.
            live = step.live = _confirm_not_owned(run, step, uid)
            version = -1  # not the cached object: compare it afresh
        why: str | None
        found: list[Finding] = []
        if live is not None and run.memory.verified.get(step.memo_key) == (digest, version):
            why = None  # found in sync before, and only its status changed since
        else:
            why = needs_apply(manifest, live, digest)
            found = hardening.check(manifest, live) if live is not None else []
            if why is None and any(f.restore for f in found):
                why = "drift"  # weakened where the operator renders the field: put it back
            if (
                why == "drift"
                and live is not None
                and run.memory.settled.get(step.memo_key) == (digest, fingerprint(live))
            ):
                why = None  # applied before with this very state: the server's own spelling
            if why is None:
                _remember_hardening(run, step.memo_key, found)
        if why is None:
            if live is not None:
                run.memory.verified[step.memo_key] = (digest, version)
            if kind in WORKLOAD_KINDS:
                deployment = live
            continue
        if kind == "Deployment" and live is not None and why == "changed":
            paced = _pace(run, manifest, live, weakened=any(f.restore for f in found))
            if paced is None:
                deployment = live  # its render-only rollout waits for a slot: left as it is
                continue
            step.paced = paced
        run.memory.verified.pop(step.memo_key, None)
        step.why = why
        steps.append(step)
    for _, group in itertools.groupby(steps, key=lambda s: s.kind_order):
        stage = list(group)
        results = run.fanout([functools.partial(_write, run.api, s, uid) for s in stage])
        refused: tuple[_Step, Exception] | None = None
        for step, result in zip(stage, results, strict=True):
            if isinstance(result, Exception):
                refused = refused or (step, result)
                continue
            live = _record(run, step, *result)
            if step.kind in WORKLOAD_KINDS:
                deployment = live
        if refused is not None:
            step, exc = refused
            if isinstance(exc, _NotOwned):
                run.fail(failures.not_owned(step.kind, step.name, exc.other))
            if isinstance(exc, _LookRefused):
                run.api_error(exc.error, step.kind, step.name, "get")
            if isinstance(exc, ApiError):
                run.api_error(exc, step.kind, step.name, "apply")
            raise exc
    return deployment


def _pace(run: _Run, manifest: Obj, live: Obj, *, weakened: bool) -> bool | None:
    """Whether the Deployment's change is a render-only rollout (:func:`.rollouts.render_only`)
    and may go now: True, it may (it holds a slot); False, it is not paced (the author's
    change, a new image, a Secret rotation, or weakened hardening, which is put back at once
    whatever else changes with it); None, it waits for a slot and the Deployment is left as
    it is."""
    pacer = run.pacer
    if pacer is None or not pacer.bounded or weakened:
        return False
    generation = run.meta.get("generation")
    observed = readable(run.snap.app.get("status")).get("observedGeneration")
    if not isinstance(generation, int) or not rollouts.render_only(
        manifest,
        live,
        generation=generation,
        observed_generation=observed if isinstance(observed, int) else None,
    ):
        return False
    if pacer.admit(run.app_key, generation):
        return True
    run.out.queued = True
    run.out.recheck_after = min(
        run.out.recheck_after or rollouts.QUEUED_RECHECK_SECONDS, rollouts.QUEUED_RECHECK_SECONDS
    )
    return None


def _confirm_not_owned(run: _Run, step: _Step, app_uid: str) -> Obj | None:
    """What holds the child's name, by one GET: this app's child, or nothing (then it is
    created, create-only); anyone else's object fails the run with NotOwned."""
    try:
        return _look(run.api, step, app_uid)
    except _NotOwned as exc:
        run.fail(failures.not_owned(step.kind, step.name, exc.other))
    except _LookRefused as exc:
        run.api_error(exc.error, step.kind, step.name, "get")


class _LookRefused(Exception):
    """The look (GET) after a refused precondition was itself refused."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


def _look(api: KubeApi, step: _Step, app_uid: str) -> Obj | None:
    """What holds a child's name now: None when nothing does, one of ours the cache has not
    seen yet; _NotOwned for anyone else's object (no managed-by label, another owner)."""
    namespace = step.manifest["metadata"]["namespace"]
    try:
        found = api.get(step.kind, namespace, step.name)
    except ApiError as err:
        raise _LookRefused(err) from err
    if found is not None and not is_controlled_by(found, app_uid):
        if not _left_by_predecessor(found, step.manifest):
            raise _NotOwned(found)
        # garbage the garbage collector has not removed yet: remove it as it would
        try:
            api.delete(step.kind, namespace, step.name, found["metadata"]["uid"])
        except ApiError as err:
            raise _LookRefused(err) from err
        log.info(
            "deleted a child left by a deleted app of the same name",
            extra={
                "app": f"{namespace}/{(controller_of(step.manifest) or {}).get('name')}",
                "kind": step.kind,
                "owner_uid": (controller_of(found) or {}).get("uid"),
            },
        )
        return None
    return found


def _left_by_predecessor(found: Obj, manifest: Obj) -> bool:
    """``found`` belongs to a PythonApp of this app's name that no longer exists: its
    controller is a PythonApp with this name and another uid. (A name is held by one object at
    a time, so the app this one replaced was deleted.) Kubernetes' garbage collector deletes
    such an object, but it may lag by minutes (a long backlog, its watches re-establishing
    after an API server restart), and a GitOps tool that deletes and re-creates an app (Argo
    CD's Replace) would find its app NotOwned until then. Deleting it here is what the
    collector would do, no more: anyone able to set such an owner reference could have the
    collector delete the object anyway."""
    theirs, ours = controller_of(found), controller_of(manifest)
    if theirs is None or ours is None:
        return False
    return (
        theirs.get("kind") == ours.get("kind") == KIND
        and str(theirs.get("apiVersion", "")).split("/")[0] == GROUP
        and theirs.get("name") == ours.get("name")
        and theirs.get("uid") != ours.get("uid")
    )


def initial_replicas(manifest: Obj, desired: list[Obj]) -> int | None:
    """The count an autoscaled Deployment is created with: its HPA's ``minReplicas``.

    Rendered without ``replicas`` (the autoscaler owns them), a new Deployment would start at
    the API server's default of one pod and the HPA raise it a sync later: a second rollout
    step, more pod events and status writes per app, and a moment at one pod that the HPA's
    floor says must not be. So the creating apply alone carries ``replicas: minReplicas`` (not
    in the hash: the next reconcile finds the Deployment in sync); every later apply without
    ``replicas`` is preceded by the hand-over (:func:`_hand_over_replicas`), so the field
    stays at whatever the autoscaler sets."""
    if manifest["kind"] != "Deployment" or "replicas" in manifest["spec"]:
        return None
    for other in desired:
        if other["kind"] == "HorizontalPodAutoscaler":
            return int(other["spec"]["minReplicas"])
    return None


def creating(applied: Obj, count: int | None) -> Obj:
    """What a create-only apply sends: with the initial count (:func:`initial_replicas`)."""
    if count is None:
        return applied
    return {**applied, "spec": {**applied["spec"], "replicas": count}}


def _hand_over_replicas(api: KubeApi, manifest: Obj, live: Obj | None) -> None:
    """Before the operator applies a Deployment without ``replicas`` (autoscaling on), hand the
    field over at its running value, as the Kubernetes docs on field management say for an
    HPA: server-side apply removes a field its last manager stops applying, and the Deployment
    would drop to its default of one pod before the autoscaler set it again. A second field
    manager applies only ``replicas`` at the live value (sharing it with whoever holds it at
    that value, so no conflict), and when the operator's apply lets go the field stays, held
    until the autoscaler or a person writes a new count. Made before every such apply, not only
    the first after switching on: whether the operator's manager still holds the field is in
    ``managedFields``, which the cache does not keep, and a marker of the last apply (the
    Deployment's :data:`..render.SCALED_BY_ANNOTATION`) can outlive that apply when another manager
    holds the same annotation. It costs one write where the Deployment is written anyway
    (a new spec, drift), never at idle or on a restart."""
    if manifest["kind"] != "Deployment" or live is None or "replicas" in manifest["spec"]:
        return
    meta = live.get("metadata") or {}
    replicas = (live.get("spec") or {}).get("replicas")
    if replicas is None:
        return
    api.hand_over_replicas(meta["namespace"], meta["name"], meta["uid"], int(replicas))
    log.debug(
        "replicas handed over at the running count before an apply without them",
        extra={"app": f"{meta['namespace']}/{meta['name']}", "replicas": replicas},
    )


def _apply_onto(api: KubeApi, applied: Obj, step: _Step, live: Obj | None) -> Obj:
    """Apply onto ``live`` (its uid the precondition), or create-only (with the initial
    count) when nothing is there."""
    if live is None:
        return api.apply(creating(applied, step.initial_replicas), uid=None)
    return api.apply(applied, uid=live["metadata"]["uid"])


def _write(api: KubeApi, step: _Step, app_uid: str) -> tuple[Obj, Obj | None]:
    """Apply one child with a precondition that keeps it from touching anyone else's object.

    A child the cache holds is applied with its uid (an object replaced under the same name is
    refused); one it does not hold is applied create-only (refused when any object holds the
    name). The cache holds every managed object, so a refusal is rare: then the name is looked
    up once and the apply made again with what the look found, or _NotOwned raised. Runs on a
    fan-out thread and changes nothing shared; returns (result, the object the apply replaced).
    """
    applied = with_hash(step.manifest)
    if step.paced:  # the record a restarted operator rebuilds its gate from (not hashed)
        meta = applied["metadata"]
        generation = meta["annotations"].get(rollouts.GENERATION_ANNOTATION, "")
        applied["metadata"] = {
            **meta,
            "annotations": {**meta["annotations"], rollouts.PACED_ANNOTATION: generation},
        }
    live = step.live
    try:
        _hand_over_replicas(api, step.manifest, live)
        return _apply_onto(api, applied, step, live), live
    except ApiError as err:
        if live is None and err.status in (400, 403, 422) and not err.namespace_terminating:
            # A create-only apply onto an existing object is merged with it and goes through
            # mutating admission (as an update) before its version is checked: a mutating
            # webhook may refuse it first. Whose object was it? Someone else's: say so.
            with contextlib.suppress(_LookRefused):
                _look(api, step, app_uid)  # raises _NotOwned for someone else's
            raise
        if not err.precondition_failed:
            raise
    # Replaced, deleted, created by someone else, or ours and not yet seen: what is there now?
    other = _look(api, step, app_uid)
    try:
        _hand_over_replicas(api, step.manifest, other)
        return _apply_onto(api, applied, step, other), other
    except ApiError as err:
        if not err.precondition_failed:
            raise
        # the name changed hands again between the look and this apply: retried with backoff
        raise ApiError(
            409,
            "Conflict",
            f"{step.kind} {step.name} was created, replaced or deleted by someone else while "
            "the operator was writing it; it will look again",
        ) from err


def _record(run: _Run, step: _Step, result: Obj, live: Obj | None) -> Obj:
    """What one successful apply changes: the cache's feed, the memos, the events."""
    kind, name, why, manifest = step.kind, step.name, step.why, step.manifest
    run.out.written.append((KINDS_BY_KIND[kind], result))
    run.out.applied.append(f"{kind}/{name} ({why})")
    # What the forced apply could not put back (a field only another writer owns) is reported.
    found = hardening.check(manifest, result)
    _remember_hardening(run, step.memo_key, found)
    if is_subset(manifest, result) and not any(f.restore for f in found):
        run.memory.settled.pop(step.memo_key, None)
    else:
        # The server keeps a spelling of its own for a value the comparison does not know, or
        # another writer keeps a field the apply does not remove. Remember that this state is
        # settled (no apply loop); any later edit changes the fingerprint.
        run.memory.settled[step.memo_key] = (desired_hash(manifest), fingerprint(result))
        log.info(
            "the API server's answer to an apply still differs from the rendered child; drift "
            "correction compares with that answer from now on",
            extra={"app": run.key, "kind": kind},
        )
    if why == "drift" and (live is None or fingerprint(live) != fingerprint(result)):
        run.event(
            "Normal",
            "DriftCorrected",
            f"{kind} {name} was edited outside the operator; fields the operator owns were "
            "put back.",
        )
    if why == "missing" and live is None and _was_reconciled(readable(run.snap.app.get("status"))):
        run.event("Normal", "Recreated", f"{kind} {name} was recreated.")
    return result


def _remember_hardening(run: _Run, key: str, found: list[Finding]) -> None:
    if found:
        run.memory.hardened[key] = tuple(found)
    else:
        run.memory.hardened.pop(key, None)


def _report_hardening(run: _Run, hashes: dict[str, str]) -> None:
    """What the children's last checks left to report goes onto the outcome (and the status)."""
    name = run.meta["name"]
    run.out.hardening = [
        (kind, name, finding) for kind in hashes for finding in run.memory.hardened.get(kind, ())
    ]


def _decide_gate(run: _Run, app: PythonApp) -> migration.Gate:
    """The migrations gate's decision (:func:`.migration.decide`) from the cache."""
    snap = run.snap
    previous = readable(snap.app.get("status")).get("migration")
    return migration.decide(
        app,
        app_uid=run.meta["uid"],
        live=_owned(snap.children.get("Deployment"), run.meta["uid"]),
        jobs=snap.observed.get("Job", []),
        pods=snap.observed.get("Pod", []),
        previous=previous if isinstance(previous, dict) else None,
    )


def _run_gate(run: _Run, gate: migration.Gate) -> None:
    """Carry out the gate's decision once the app's isolation is in place (its
    ServiceAccount and NetworkPolicy cover the Job's pod): delete superseded running
    migrations (uid precondition; their pods go with them), create the new Job (create-only:
    a Job is immutable and never applied twice; one not in the cache but found ours by the
    look is left as it is)."""
    uid = run.meta["uid"]
    for job in gate.stale:
        jmeta = job["metadata"]
        try:
            run.api.delete("Job", jmeta["namespace"], jmeta["name"], jmeta["uid"])
        except ApiError as err:
            run.api_error(err, "Job", jmeta["name"], "delete")
        job_kind = KINDS_BY_KIND["Job"]
        run.out.removed.append((job_kind, jmeta["namespace"], jmeta["name"], jmeta["uid"]))
        run.out.deleted.append(f"Job/{jmeta['name']} (superseded)")
    if gate.create is None:
        return
    step = _Step(gate.create, None, "missing")
    try:
        result, _ = _write(run.api, step, uid)
    except _NotOwned as exc:
        run.fail(failures.not_owned(step.kind, step.name, exc.other))
    except _LookRefused as exc:
        run.api_error(exc.error, step.kind, step.name, "get")
    except ApiError as err:
        run.api_error(err, step.kind, step.name, "create")
    run.out.written.append((KINDS_BY_KIND["Job"], result))
    run.out.applied.append(f"Job/{step.name} (migration)")
    run.event("Normal", migration.MIGRATING, gate.message)


def _remove_stale(run: _Run, wanted: set[str]) -> None:
    """Delete owned children of kinds the renderer no longer produces (web -> worker)."""
    uid = run.meta["uid"]
    for kind in CHILD_KINDS:
        if kind.kind in wanted:
            continue
        stale = _owned(run.snap.children.get(kind.kind), uid)
        if stale is None:
            continue
        smeta = stale["metadata"]
        try:
            run.api.delete(kind.kind, smeta["namespace"], smeta["name"], smeta["uid"])
        except ApiError as err:
            run.api_error(err, kind.kind, smeta["name"], "delete")
        run.out.removed.append((kind, smeta["namespace"], smeta["name"], smeta["uid"]))
        run.out.deleted.append(f"{kind.kind}/{smeta['name']}")


def workload_kind(app: Obj) -> str:
    """The kind that runs the app's pods, by its stored spec's profile (a scheduled app's
    CronJob, else the Deployment); read from the object as stored, valid or not."""
    spec = app.get("spec")
    profile = spec.get("profile") if isinstance(spec, dict) else None
    return "CronJob" if profile == "cron" else "Deployment"


def _sync_status(run: _Run, workload: Obj | None) -> None:
    """Patch the status if it changed; post a Warning event for a new verdict or failure.
    ``workload``: the app's live Deployment, or a scheduled app's CronJob."""
    meta, previous = run.meta, readable(run.snap.app.get("status"))
    scheduled = workload_kind(run.snap.app) == "CronJob"
    deployment = None if scheduled else workload
    cronjob = workload if scheduled else None
    runs = (
        cron.observe(
            cronjob,
            run.snap.observed.get("Job", []),
            run.snap.observed.get("Pod", []),
            previous.get("cron"),
        )
        if scheduled
        else None
    )
    failure = run.out.failure
    if failure is None and run.out.hardening:
        # a verdict, not a failure of this reconcile: nothing to retry, the child's next
        # change (the field removed) brings the app back here
        failure = failures.hardening_drift(run.out.hardening)
    now = run.now()
    said = (
        cron.waiting(cronjob, run.snap.observed.get("Job", []), run.snap.observed.get("Pod", []))
        if scheduled
        else pods.verdict(
            deployment,
            run.snap.observed.get("ReplicaSet", []),
            run.snap.observed.get("Pod", []),
            now,
        )
    )
    if said is not None:
        run.out.recheck_after = said.recheck_after
    gate = run.gate
    route = routes.assess(
        run.snap.app,
        run.snap.children,
        routes.expected_kind(run.snap.app, run.snap.routing.kind),
    )
    status = compute_status(
        generation=meta.get("generation"),
        problems=run.out.problems,
        problems_reason=run.out.problems_reason,
        deployment=deployment,
        previous=previous,
        now=now,
        failure=failure,
        pods=said,
        gate=None
        if gate is None or gate.reason is None
        else Failure(gate.reason, gate.message, gate.reason == migration.MIGRATION_FAILED),
        migration=None if gate is None else gate.record,
        route=None if route is None else route.record,
        route_refused=None
        if route is None or not route.refused
        else Failure(routes.ROUTE_NOT_ACCEPTED, route.message, stalled=True),
        cronjob=cronjob,
        cron=runs,
        queued=_queued_message(run) if run.out.queued else None,
    )
    # fields the status no longer has, to drop from the whole written: what the other
    # workload kind wrote (after a switch of profile), status.route when spec.expose went
    foreign = [key for key in foreign_fields(scheduled) if key in previous]
    if "route" in previous and "route" not in status:
        foreign.append("route")
    if not status_differs(previous, status) and not foreign:
        return
    if _verdict(previous) != _verdict(status):
        # once per new verdict or failure, not per pod change or retry
        if run.out.problems:
            run.event("Warning", run.out.problems_reason, "; ".join(run.out.problems))
        elif failure is not None:
            run.event("Warning", failure.reason, failure.message)
        elif gate is not None and gate.reason == migration.MIGRATION_FAILED:
            run.event("Warning", gate.reason, gate.message)
        elif said is not None and said.reason:
            run.event("Warning", said.reason, said.message)
        elif (verdict := _verdict(status)) is not None:
            run.event("Warning", verdict[1], verdict[2])  # a scheduled app's last run failed
    try:
        # the whole status: what a merge patch of ``status`` onto ``previous`` would leave
        # (less the fields the status no longer has, above)
        whole = {k: v for k, v in {**previous, **status}.items() if k not in foreign}
        result = run.api.patch_status(meta["namespace"], meta["name"], whole, meta["uid"])
    except ApiError as err:
        if err.status == 404 or err.app_replaced:
            # deleted meanwhile (and maybe re-created under the same name, which was left
            # alone): forget it (its DELETED event may be lost)
            run.out.gone = True
            run.out.removed.append((APP, meta["namespace"], meta["name"], meta["uid"]))
            return
        if run.out.failure is None:
            run.out.failure = failures.from_api_error(err, "PythonApp", meta["name"], "patch")
        log.warning("could not patch the status", extra={"app": run.key, "error": str(err)})
        return
    run.out.written.append((APP, result))
    run.out.status_patched = True


def _queued_message(run: _Run) -> str:
    """What a waiting app says: no count that moves (the status would be written as the
    queue moves), only the bound."""
    limit = run.pacer.limit if run.pacer is not None else 0
    return (
        "An operator upgrade renders the pod template differently; the pods are rolled to it "
        f"when a rollout slot frees ({limit} apps at a time). The spec is in effect."
    )


def _was_reconciled(previous: dict[str, Any]) -> bool:
    """The app had converged once and is not failing: a missing child was deleted by someone."""
    return previous.get("observedGeneration") is not None and _verdict(previous) is None


def _verdict(status: dict[str, Any]) -> tuple[str, str, str] | None:
    """(Stalled status, Ready reason, Ready message) when the app failed; None otherwise."""
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    ready, stalled = conds.get("Ready") or {}, conds.get("Stalled") or {}
    failing = stalled.get("status") == "True" or ready.get("reason") in _FAILURE_REASONS
    if not failing:
        return None
    return (stalled.get("status", ""), ready.get("reason", ""), stalled.get("message", ""))


_FAILURE_REASONS = frozenset(
    {
        INVALID_SPEC,
        POLICY_VIOLATION,
        failures.NOT_OWNED,
        failures.QUOTA_EXCEEDED,
        failures.FORBIDDEN,
        failures.REJECTED,
        failures.CONFLICT,
        failures.API_UNAVAILABLE,
        failures.HARDENING_DRIFT,
        failures.SECRET_MISSING,
        failures.CONFIG_MISSING,
        migration.MIGRATION_FAILED,
        routes.ROUTE_NOT_ACCEPTED,
        *pods.REASONS,
    }
)
