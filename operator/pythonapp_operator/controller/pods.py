"""What the pods say: why an app's pods do not run, in the cluster's own words. Pure.

The Deployment only says that a rollout has not finished (and after ten minutes, that it
stopped). Why is written elsewhere: by the kubelet on each pod (a waiting or terminated
container, a readiness that never passes), by the scheduler on the pod (Unschedulable), and by
the ReplicaSet controller on the ReplicaSet when the pods could not even be created (Pod
Security admission, a ResourceQuota, a webhook). This module reads those, from the trimmed
objects the cache keeps (:func:`.kinds._trim_pod`, :func:`.kinds._trim_replicaset`), and
answers with one verdict: the most urgent reason, how many pods show it, and the words.

Only pods and ReplicaSets that belong to the app's own Deployment count (by controller owner
references, not only by label): an object that merely carries the app's labels says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .kinds import Obj, controller_of

IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
UNSCHEDULABLE = "Unschedulable"
FAILED_CREATE = "FailedCreate"
READINESS_FAILING = "ReadinessFailing"

#: the kubelet's waiting reasons, by the reason the app reports (one stable reason per cause)
_WAITING: dict[str, str] = {
    "ImagePullBackOff": IMAGE_PULL_BACK_OFF,
    "ErrImagePull": IMAGE_PULL_BACK_OFF,
    "InvalidImageName": IMAGE_PULL_BACK_OFF,
    "ErrImageNeverPull": IMAGE_PULL_BACK_OFF,
    "RegistryUnavailable": IMAGE_PULL_BACK_OFF,
    "CrashLoopBackOff": CRASH_LOOP_BACK_OFF,
    "CreateContainerConfigError": CREATE_CONTAINER_CONFIG_ERROR,
    "CreateContainerError": CREATE_CONTAINER_CONFIG_ERROR,
}

#: most urgent first: a cause that stops every pod before one that stops some
_PRIORITY = (
    FAILED_CREATE,
    IMAGE_PULL_BACK_OFF,
    CREATE_CONTAINER_CONFIG_ERROR,
    CRASH_LOOP_BACK_OFF,
    UNSCHEDULABLE,
    READINESS_FAILING,
)

#: reasons a person must act on (Stalled=True); the others may pass by themselves (room on a
#: node, a dependency of the readiness endpoint coming back): Reconciling=True
STALLING = frozenset(
    {FAILED_CREATE, IMAGE_PULL_BACK_OFF, CREATE_CONTAINER_CONFIG_ERROR, CRASH_LOOP_BACK_OFF}
)

#: every reason this module may give (for the status's failure set and the docs)
REASONS = frozenset(_PRIORITY)

#: a container running this long without passing readiness is reported (the renderer's
#: readiness probe fails a pod after 3 x 10 s; the startup probe has passed by then)
READINESS_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    """Why the pods do not run: a stable reason and the cluster's words, with counts."""

    reason: str
    message: str
    #: a person must act (Stalled), or it may pass by itself (Reconciling)
    stalled: bool
    #: seconds until the verdict may change without any event (a readiness grace running out)
    recheck_after: float | None = None


def _owned_by(obj: Obj, uids: set[str]) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") in uids


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pod_reason(pod: Obj, now: float | None) -> tuple[str, str, float | None] | None:
    """(reason, the cluster's words, recheck in seconds) for one pod, or None if it is fine
    or simply starting."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == UNSCHEDULABLE:
        return UNSCHEDULABLE, scheduled.get("message") or "no node fits the pod", None
    found: list[tuple[str, str, float | None]] = []
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in statuses:
        state = container.get("state") or {}
        waiting = state.get("waiting")
        if waiting is not None:
            reason = _WAITING.get(str(waiting.get("reason")))
            if reason == CRASH_LOOP_BACK_OFF:
                found.append((reason, _crash_words(container), None))
            elif reason is not None:
                words = str(waiting.get("message") or "")
                kubelet = str(waiting.get("reason"))
                if kubelet != reason:  # the kubelet's own reason, where it says more
                    words = f"{kubelet}: {words}" if words else kubelet
                found.append((reason, words or kubelet, None))
            continue
        terminated = state.get("terminated")
        if terminated is not None:
            # the 1.36 kubelet shows a crash-looping container as terminated between restarts
            # (waiting: CrashLoopBackOff only for moments; seen on the real node): in a
            # Deployment's pod (restartPolicy Always) any exit is a crash to report
            found.append(
                (CRASH_LOOP_BACK_OFF, _crash_words({**container, "lastState": state}), None)
            )
            continue
        running = state.get("running")
        if running is not None and not container.get("ready") and container.get("started", True):
            started = _seconds(running.get("startedAt"))
            if started is None or now is None:
                continue
            waited = now - started
            if waited >= READINESS_GRACE_SECONDS:
                found.append(
                    (
                        READINESS_FAILING,
                        f"container {container.get('name')} running for {int(waited)} s "
                        "without passing its readiness probe",
                        None,
                    )
                )
            else:
                found.append(("", "", READINESS_GRACE_SECONDS - waited))
    real = [f for f in found if f[0]]
    if real:
        return min(real, key=lambda f: _PRIORITY.index(f[0]))
    later = [f[2] for f in found if f[2] is not None]
    return ("", "", min(later)) if later else None


def _crash_words(container: Obj) -> str:
    """The last exit of a crash-looping container: its code, and OOMKilled called out."""
    last = ((container.get("lastState") or {}).get("terminated")) or {}
    name = container.get("name")
    restarts = container.get("restartCount", 0)
    code = last.get("exitCode")
    why = last.get("reason")
    if why == "OOMKilled":
        return (
            f"container {name} was OOMKilled (exit code {code}): it used more memory than "
            "resources.limits.memory allows"
        )
    told = f" ({why})" if why and why != "Error" else ""
    exit_words = f"last exit code {code}{told}" if code is not None else "it keeps exiting"
    return f"container {name} restarted {_bucket(restarts)}, {exit_words}"


def _bucket(restarts: Any) -> str:
    """Restart counts coarsely, so a crash loop's status is not rewritten on every restart."""
    count = int(restarts or 0)
    if count < 5:
        return "repeatedly"
    return "5+ times" if count < 20 else "20+ times"


def verdict(
    deployment: Obj | None,
    replicasets: list[Obj],
    pods: list[Obj],
    now: str | None = None,
) -> Verdict | None:
    """The most urgent reason the app's pods give, or None when they give none."""
    if deployment is None:
        return None
    dep_uid = (deployment.get("metadata") or {}).get("uid")
    owned_sets = [rs for rs in replicasets if _owned_by(rs, {str(dep_uid)})]
    for rs in owned_sets:
        for cond in (rs.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                words = cond.get("message") or cond.get("reason") or "pods cannot be created"
                return Verdict(
                    FAILED_CREATE,
                    f"ReplicaSet {rs['metadata']['name']}: {words}",
                    stalled=True,
                )
    set_uids = {str((rs.get("metadata") or {}).get("uid")) for rs in owned_sets}
    live = [
        p
        for p in pods
        if _owned_by(p, set_uids) and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    clock = _seconds(now)
    reasons: list[tuple[str, str]] = []
    recheck: list[float] = []
    for pod in live:
        said = _pod_reason(pod, clock)
        if said is None:
            continue
        if said[0]:
            reasons.append((said[0], said[1]))
        elif said[2] is not None:
            recheck.append(said[2])
    if not reasons:
        if recheck:
            return Verdict("", "", stalled=False, recheck_after=max(1.0, min(recheck)))
        return None
    reason = min((r for r, _ in reasons), key=_PRIORITY.index)
    # one pod's words stand for all; an OOM kill says the most, then a stable choice
    words = sorted((w for r, w in reasons if r == reason), key=lambda w: ("OOMKilled" not in w, w))
    count = len(words)
    message = f"{count} of {len(live)} pods: {reason}: {words[0]}"
    return Verdict(reason, message, stalled=reason in STALLING)


def run_verdict(pods: list[Obj], job_uid: str, job_name: str) -> Verdict | None:
    """Why a scheduled run's pod has not started (the Job ``job_uid`` made it): the kubelet's
    waiting reasons (an image that cannot be pulled, a Secret or key missing) and the
    scheduler's Unschedulable, read from pods still Pending. A run's pod that started and
    ended says nothing here (its Job's result does), and it has no probes to fail. Without
    a deadline (``cron.activeDeadlineSeconds``) such a run would wait for ever, and with
    ``concurrencyPolicy: Forbid`` hold every later run back: it is said at once."""
    found: list[tuple[str, str]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        phase = (pod.get("status") or {}).get("phase")
        if not _owned_by(pod, {job_uid}) or meta.get("deletionTimestamp") or phase != "Pending":
            continue
        said = _pod_reason(pod, None)
        if said is not None and said[0] in (
            IMAGE_PULL_BACK_OFF,
            CREATE_CONTAINER_CONFIG_ERROR,
            UNSCHEDULABLE,
        ):
            found.append((said[0], said[1]))
    if not found:
        return None
    reason, words = min(found, key=lambda f: _PRIORITY.index(f[0]))
    return Verdict(
        reason, f"Run {job_name} cannot start: {reason}: {words}", stalled=reason in STALLING
    )
