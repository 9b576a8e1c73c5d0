"""Compute a PythonApp's status from what the API server reports. Pure: no I/O, no clock.

Conditions follow kstatus (what Flux and Argo CD read): ``Ready`` says whether the app serves,
``Reconciling`` whether the operator or the Deployment controller is still working towards the
spec, ``Stalled`` whether progress stopped and a person must act. All three are always present,
each with a reason and a message; ``lastTransitionTime`` only moves when a condition's status
changes, so a steady app has a steady status (and the operator writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.image import ImageError, parse_image
from ..render import pod_template
from .pods import Verdict

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"


@dataclass(frozen=True)
class Failure:
    """Why the last reconcile could not finish: a stable reason and a message for people.

    ``stalled`` failures need a person (a name conflict, a refusal by policy, RBAC or quota):
    Stalled=True. The others (API server unavailable, timeouts, conflicts) are expected to pass
    and show as Reconciling=True. Both are retried with backoff, and both clear by themselves
    once the cause goes.
    """

    reason: str
    message: str
    stalled: bool


def _condition(deployment: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def _short(image: str | None) -> str | None:
    if not image:
        return None
    try:
        return parse_image(image).short
    except ImageError:
        return image[:40]


def _selector(deployment: dict[str, Any]) -> str | None:
    """The Deployment's pod selector as a string (``k=v,k=v``, sorted): what the PythonApp's
    /scale subresource reports (its labelSelectorPath), as a Deployment's own /scale does."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


#: the spec breaks the models' rules (the schema let it through: an old CRD, no CEL)
INVALID_SPEC = "InvalidSpec"
#: the spec is valid, and the platform policy does not admit it (a policy newer than the app)
POLICY_VIOLATION = "PolicyViolation"


def _problem_conditions(reason: str, message: str, kept: str) -> dict[str, tuple[str, str, str]]:
    if reason == POLICY_VIOLATION:
        return {
            READY: (
                "False",
                reason,
                f"The platform policy does not admit the spec: {message}.{kept}",
            ),
            RECONCILING: (
                "False",
                reason,
                "Waiting for a spec within the platform policy, or a policy that admits it.",
            ),
            STALLED: ("True", reason, message),
        }
    return {
        READY: ("False", reason, f"The spec is invalid: {message}.{kept}"),
        RECONCILING: ("False", reason, "Waiting for a corrected spec."),
        STALLED: ("True", reason, message),
    }


def assess(
    *,
    generation: int | None,
    problems: list[str],
    problems_reason: str = INVALID_SPEC,
    deployment: dict[str, Any] | None,
    failure: Failure | None = None,
    pods: Verdict | None = None,
    gate: Failure | None = None,
    route: Failure | None = None,
    cronjob: dict[str, Any] | None = None,
    cron: dict[str, Any] | None = None,
    queued: str | None = None,
) -> tuple[dict[str, tuple[str, str, str]], dict[str, Any]]:
    """(conditions as {type: (status, reason, message)}, other status fields).

    ``pods`` is what the app's pods and ReplicaSets say (:func:`.pods.verdict`): while the
    Deployment has not converged, it says why, in the cluster's words, before the rollout's
    ten-minute deadline would. ``cron`` (a scheduled app's ``status.cron``, :func:`.cron.observe`)
    marks a scheduled app, whose workload is ``cronjob`` instead of a Deployment. ``queued``
    says why an operator upgrade's rollout of a converged app waits for a slot
    (:mod:`.rollouts`): the app stays Ready and not Reconciling (kstatus Current, Argo CD
    Healthy), because its spec is in effect and a GitOps wait must not hang on the
    operator's own pacing; the reason says it waits."""
    fields: dict[str, Any] = {"observedGeneration": generation}
    workload = "Deployment" if cron is None else "CronJob"
    running = deployment if cron is None else cronjob
    if cron is not None:
        fields["cron"] = cron
        if cronjob is not None:
            containers = (pod_template(cronjob).get("spec") or {}).get("containers") or [{}]
            image = containers[0].get("image")
            fields.update(image=image, shortImage=_short(image))
    desired = 0
    if deployment is not None:
        st = deployment.get("status") or {}
        desired = (deployment.get("spec") or {}).get("replicas", 1)
        ready = st.get("readyReplicas", 0)
        containers = deployment["spec"]["template"]["spec"].get("containers") or [{}]
        image = containers[0].get("image")
        fields.update(
            selector=_selector(deployment),
            replicas=st.get("replicas", 0),
            readyReplicas=ready,
            updatedReplicas=st.get("updatedReplicas", 0),
            availableReplicas=st.get("availableReplicas", 0),
            image=image,
            shortImage=_short(image),
            ready=f"{ready}/{desired}",
        )

    if problems:
        message = "; ".join(problems)
        kept = "" if running is None else f" The existing {workload} is left as it was."
        return _problem_conditions(problems_reason, message, kept), fields

    if failure is not None:
        kept = "" if running is None else f" The existing {workload} keeps running."
        if failure.stalled:
            return {
                READY: ("False", failure.reason, failure.message + kept),
                RECONCILING: ("False", failure.reason, "Retrying with backoff; needs a person."),
                STALLED: ("True", failure.reason, failure.message),
            }, fields
        return {
            READY: ("False", failure.reason, failure.message + kept),
            RECONCILING: ("True", failure.reason, "Retrying with backoff: " + failure.message),
            STALLED: ("False", failure.reason, "Not stalled."),
        }, fields

    if gate is not None:
        # the migrations gate holds the new image back (:mod:`.migration`): Migrating while
        # its Job runs, MigrationFailed (a person must act) once it failed
        if gate.stalled:
            kept = "" if deployment is None else " The existing Deployment keeps running."
            return {
                READY: ("False", gate.reason, gate.message + kept),
                RECONCILING: ("False", gate.reason, "The migration failed; needs a person."),
                STALLED: ("True", gate.reason, gate.message),
            }, fields
        return {
            READY: ("False", gate.reason, gate.message),
            RECONCILING: ("True", gate.reason, gate.message),
            STALLED: ("False", gate.reason, "Not stalled."),
        }, fields

    if cron is not None:
        return _assess_cron(cronjob, cron, pods), fields

    if deployment is None:
        return {
            READY: ("False", "Creating", "The Deployment is being created."),
            RECONCILING: ("True", "Creating", "The Deployment is being created."),
            STALLED: ("False", "Creating", "Not stalled."),
        }, fields

    st = deployment.get("status") or {}
    progressing = _condition(deployment, "Progressing")
    available = _condition(deployment, "Available")
    replica_failure = _condition(deployment, "ReplicaFailure")
    said = pods if pods is not None and pods.reason else None
    deadline = progressing.get("reason") == "ProgressDeadlineExceeded"
    if said is not None and (deadline or not _converged(deployment)):
        message = said.message + (
            " The rollout exceeded its progress deadline." if deadline else ""
        )
        if said.stalled or deadline:
            return {
                READY: ("False", said.reason, message),
                RECONCILING: ("False", said.reason, "The rollout cannot go on; needs a person."),
                STALLED: ("True", said.reason, message),
            }, fields
        return {
            READY: ("False", said.reason, message),
            RECONCILING: ("True", said.reason, message),
            STALLED: ("False", said.reason, "Not stalled."),
        }, fields
    if deadline:
        message = progressing.get("message") or "The rollout exceeded its progress deadline."
        return {
            READY: ("False", "ProgressDeadlineExceeded", message),
            RECONCILING: ("False", "ProgressDeadlineExceeded", "The rollout stopped."),
            STALLED: ("True", "ProgressDeadlineExceeded", message),
        }, fields
    if replica_failure.get("status") == "True":
        message = replica_failure.get("message") or "Pods cannot be created."
        reason = replica_failure.get("reason") or "ReplicaFailure"
        return {
            READY: ("False", reason, message),
            RECONCILING: ("False", reason, "Pods cannot be created."),
            STALLED: ("True", reason, message),
        }, fields

    meta_gen = (deployment.get("metadata") or {}).get("generation", 0)
    pending = []
    if st.get("observedGeneration", 0) < meta_gen:
        pending.append("the Deployment controller has not seen the latest template yet")
    if st.get("updatedReplicas", 0) < desired:
        pending.append(f"{st.get('updatedReplicas', 0)} of {desired} pods updated")
    if st.get("replicas", 0) > st.get("updatedReplicas", 0):
        pending.append(f"{st.get('replicas', 0) - st.get('updatedReplicas', 0)} old pods remain")
    if st.get("availableReplicas", 0) < desired:
        pending.append(f"{st.get('availableReplicas', 0)} of {desired} pods available")
    if pending:
        message = "Rolling out: " + ", ".join(pending) + "."
        return {
            READY: ("False", "Progressing", message),
            RECONCILING: ("True", "Progressing", message),
            STALLED: ("False", "Progressing", "Not stalled."),
        }, fields
    if desired > 0 and available.get("status") != "True":
        message = available.get("message") or "The Deployment is not available."
        return {
            READY: ("False", "Unavailable", message),
            RECONCILING: ("True", "Unavailable", message),
            STALLED: ("False", "Unavailable", "Not stalled."),
        }, fields
    if route is not None:
        # the app serves, but the Gateway refused its route (spec.expose): a person must act;
        # a route no controller has answered yet is no reason (controller/routes.py)
        return {
            READY: ("False", route.reason, route.message),
            RECONCILING: ("False", route.reason, "The route was refused; needs a person."),
            STALLED: ("True", route.reason, route.message),
        }, fields
    message = f"{fields['ready']} pods ready, running {fields.get('shortImage')}."
    if queued is not None:
        return {
            READY: ("True", "RolloutQueued", f"{message} {queued}"),
            RECONCILING: ("False", "RolloutQueued", queued),
            STALLED: ("False", "RolloutQueued", "Not stalled."),
        }, fields
    return {
        READY: ("True", "Available", message),
        RECONCILING: ("False", "Available", "Up to date."),
        STALLED: ("False", "Available", "Not stalled."),
    }, fields


def _assess_cron(
    cronjob: dict[str, Any] | None, cron: dict[str, Any], waiting: Verdict | None = None
) -> dict[str, tuple[str, str, str]]:
    """A scheduled app's conditions: Ready once its CronJob exists (runs start on schedule),
    Stalled while its last run failed (a person must look: the next run may fail alike; a
    run that succeeds clears it). A run in progress is not Reconciling: the app is as its
    spec says, and GitOps tools waiting for it would otherwise wait for the run. A run whose
    pod cannot start (``waiting``: :func:`.pods.run_verdict`) is said as the Deployment's
    pods would say it: stalled for what needs a person, Reconciling for what may pass."""
    if waiting is not None and cronjob is not None:
        if waiting.stalled:
            return {
                READY: ("False", waiting.reason, waiting.message),
                RECONCILING: ("False", waiting.reason, "The run cannot start; needs a person."),
                STALLED: ("True", waiting.reason, waiting.message),
            }
        return {
            READY: ("False", waiting.reason, waiting.message),
            RECONCILING: ("True", waiting.reason, waiting.message),
            STALLED: ("False", waiting.reason, "Not stalled."),
        }
    if cronjob is None:
        return {
            READY: ("False", "Creating", "The CronJob is being created."),
            RECONCILING: ("True", "Creating", "The CronJob is being created."),
            STALLED: ("False", "Creating", "Not stalled."),
        }
    spec = cronjob.get("spec") or {}
    when = f"'{spec.get('schedule')}'" + (f" ({spec['timeZone']})" if spec.get("timeZone") else "")
    last = cron.get("lastRun") if isinstance(cron.get("lastRun"), dict) else None
    if last is not None and last.get("result") == RUN_FAILED:
        message = (
            f"{last.get('message') or 'The last run failed.'} Runs go on at {when}; the next "
            "run that succeeds clears this."
        )
        return {
            READY: ("False", "RunFailed", message),
            RECONCILING: ("False", "RunFailed", "The last run failed; needs a person."),
            STALLED: ("True", "RunFailed", message),
        }
    if cron.get("suspended"):
        return {
            READY: ("True", "Suspended", "Suspended (spec.cron.suspend): no new run starts."),
            RECONCILING: ("False", "Suspended", "Up to date."),
            STALLED: ("False", "Suspended", "Not stalled."),
        }
    if last is None:
        said = "no run yet"
    elif last.get("result") == "Running":
        said = f"run {last.get('job')} is in progress"
    elif last.get("result") == "Stopped":
        said = f"the last run ({last.get('job')}) was stopped before it ended"
    else:
        said = f"the last run ({last.get('job')}) succeeded"
    return {
        READY: ("True", "Scheduled", f"Runs at {when}; {said}."),
        RECONCILING: ("False", "Scheduled", "Up to date."),
        STALLED: ("False", "Scheduled", "Not stalled."),
    }


RUN_FAILED = "Failed"
#: status fields only a Deployment gives, and only a CronJob: a profile switch drops the
#: other workload's (:func:`foreign_fields`)
DEPLOYMENT_FIELDS = (
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
    "ready",
    "selector",
)
CRON_FIELDS = ("cron",)


def foreign_fields(scheduled: bool) -> tuple[str, ...]:
    """The status fields the other workload kind wrote, which a switch of profile leaves
    behind: a scheduled app has no replicas, a web app or worker no runs."""
    return DEPLOYMENT_FIELDS if scheduled else CRON_FIELDS


def _converged(deployment: dict[str, Any]) -> bool:
    """Every desired pod is updated and available, and no old pod is left."""
    st = deployment.get("status") or {}
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    meta_gen = (deployment.get("metadata") or {}).get("generation", 0)
    return bool(
        st.get("observedGeneration", 0) >= meta_gen
        and st.get("updatedReplicas", 0) >= desired
        and st.get("availableReplicas", 0) >= desired
        and st.get("replicas", 0) <= st.get("updatedReplicas", 0)
    )


def readable(status: object) -> dict[str, Any]:
    """A stored status as this module reads it: a mapping whose ``conditions`` are mappings.

    What the API server hands back is usually the operator's own status, but an object stored
    while the CRD had no schema (or written by another client) may hold any JSON there. Such a
    status is read as what it is worth (nothing, or only its well-formed conditions), so the
    app gets a status of its own instead of a reconcile that raises for ever.
    """
    if not isinstance(status, dict):
        return {}
    out = dict(status)
    conditions = out.get("conditions")
    if conditions is not None:
        listed = conditions if isinstance(conditions, list) else []
        out["conditions"] = [c for c in listed if isinstance(c, dict)]
    return out


def compute_status(
    *,
    generation: int | None,
    problems: list[str],
    problems_reason: str = INVALID_SPEC,
    deployment: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    now: str,
    failure: Failure | None = None,
    pods: Verdict | None = None,
    gate: Failure | None = None,
    migration: dict[str, Any] | None = None,
    route: dict[str, Any] | None = None,
    route_refused: Failure | None = None,
    cronjob: dict[str, Any] | None = None,
    cron: dict[str, Any] | None = None,
    queued: str | None = None,
) -> dict[str, Any]:
    """The whole status; ``previous`` keeps transition times stable, ``now`` stamps new ones.

    ``gate`` is the migrations gate's verdict while it holds a new image back (Migrating,
    MigrationFailed); ``migration`` a migration Job's result that just ended (else the last
    one recorded stays). ``route`` is ``status.route`` (spec.expose), ``route_refused`` the
    Gateway's explicit refusal of it (:mod:`.routes`). ``cronjob`` and ``cron``: a scheduled
    app's (see :func:`assess`)."""
    conditions, fields = assess(
        generation=generation,
        problems=problems,
        problems_reason=problems_reason,
        deployment=deployment,
        failure=failure,
        pods=pods,
        gate=gate,
        route=route_refused,
        cronjob=cronjob,
        cron=cron,
        queued=queued,
    )
    before = {c.get("type"): c for c in readable(previous).get("conditions") or []}
    out_conditions = []
    for kind in (READY, RECONCILING, STALLED):
        status, reason, message = conditions[kind]
        old = before.get(kind) or {}
        changed = old.get("status") != status
        out_conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
                "observedGeneration": generation,
            }
        )
    status_out: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    status_out["conditions"] = out_conditions
    if migration is not None:
        status_out["migration"] = migration
    if route is not None:
        status_out["route"] = route
    if (problems or failure) and previous:
        # Keep reporting what still runs: counts and image of the untouched Deployment.
        for key in ("image", "shortImage"):
            if key not in status_out and previous.get(key):
                status_out[key] = previous[key]
    return status_out


def status_differs(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """True when a status patch would change something."""
    current = current or {}
    return any(current.get(key) != value for key, value in desired.items())
