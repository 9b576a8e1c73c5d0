"""The migrations gate (``spec.migrate``): which image the Deployment runs, decided from the
migration Jobs the cache holds. Pure: no I/O, no clock.

A migration is identified by its Job's name (:func:`..render.migration_job_name`: the app's
name and a hash of image, command and args). The gate has passed for it when

- the live Deployment records it (:data:`..render.MIGRATED_ANNOTATION`, written with the image
  it let through: the record outlives the Job, which its TTL deletes), or
- the app's ``status.migration`` says this Job succeeded (the Deployment's apply may have
  failed after the Job ended), or
- the Job in the cache is Complete.

Until then the Deployment keeps the image it runs (a new app gets no Deployment: migrations
run before the first traffic), and the Job is created once no other migration of the app
runs (one migration at a time: a superseded running Job is deleted first, and its pods must
be gone). A failed Job (BackoffLimitExceeded, DeadlineExceeded) stops the gate for that
image and command (Stalled, ``MigrationFailed``; its ``status.migration`` record keeps it
failed after the TTL deleted the Job, so it is not run again) until a new image or command
names a new Job. Going back to an earlier image is a new migration as far as the Deployment's
record goes (it names the newer one): the gate runs again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..api.image import ImageError, parse_image
from ..api.models import PythonApp
from ..render import MIGRATED_ANNOTATION, MIGRATION_IMAGE_ANNOTATION, migration_job
from .jobs import exit_words, finished, is_scheduled_run, waiting_words
from .kinds import Obj, controller_of, is_controlled_by

#: the most of the Job's own words a failure message carries
_MAX_WORDS = 1024
MIGRATING = "Migrating"
MIGRATION_FAILED = "MigrationFailed"
SUCCEEDED, FAILED = "Succeeded", "Failed"


@dataclass(frozen=True)
class Gate:
    """The gate's decision for one reconcile."""

    #: the image the Deployment runs (None: ``spec.image``, the gate is open or unused)
    image: str | None = None
    #: the migration the Deployment's image passed (its annotation), if any
    migrated: str | None = None
    #: False: no Deployment yet (a new app whose first migration has not succeeded)
    deploy: bool = True
    #: the Job to create (create-only), or None
    create: Obj | None = None
    #: superseded migration Jobs still running, to delete
    stale: list[Obj] = field(default_factory=list)
    #: Migrating or MigrationFailed while the gate is shut; None when open
    reason: str | None = None
    message: str = ""
    #: a finished Job's result for ``status.migration`` (None: keep what the status says)
    record: dict[str, Any] | None = None


def _short(image: str | None) -> str:
    if not image:
        return "none"
    try:
        return parse_image(image).short
    except ImageError:
        return image[:40]


def _failure_message(job: Obj, cond: dict[str, Any], pods: list[Obj]) -> str:
    name = job["metadata"]["name"]
    reason = cond.get("reason") or "Failed"
    words = f"{reason}: {cond['message']}" if cond.get("message") else reason
    code = exit_words(pods, job["metadata"].get("uid", ""))
    last = f"; last attempt: {code}" if code else ""
    # bounded: status.migration.message holds at most 4096 characters (the CRD's schema)
    return f"Migration Job {name} failed ({words[:_MAX_WORDS]}{last})."


def _running(job: Obj) -> bool:
    return finished(job) is None


def _job_pods_left(pods: list[Obj]) -> list[str]:
    """The app's migration pods that have not ended: of any Job, a deleted one's included (a
    Job deleted with background propagation goes at once, its pods after it)."""
    left = []
    for pod in pods:
        ref = controller_of(pod) or {}
        if ref.get("kind") == "Job" and not is_scheduled_run(pod):
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed"):
                left.append(pod["metadata"]["name"])
    return left


def decide(
    app: PythonApp,
    *,
    app_uid: str,
    live: Obj | None,
    jobs: list[Obj],
    pods: list[Obj],
    previous: dict[str, Any] | None,
) -> Gate:
    """The gate's decision from the cached Deployment (``live``), the app's Jobs and pods, and
    the app's last ``status.migration`` (``previous``)."""
    ours_jobs = [j for j in jobs if is_controlled_by(j, app_uid)]
    manifest = migration_job(app)
    if manifest is None:
        # no gate (or removed): a migration still running is stopped
        stale = [j for j in ours_jobs if _running(j) and not _deleting(j)]
        return Gate(stale=stale)
    name = manifest["metadata"]["name"]
    image = app.spec.image
    job = next((j for j in ours_jobs if j["metadata"]["name"] == name), None)
    others = [j for j in ours_jobs if j["metadata"]["name"] != name]
    stale = [j for j in others if _running(j) and not _deleting(j)]
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    live_mark = annotations.get(MIGRATED_ANNOTATION)
    live_image = _image(live)
    held = Gate(
        image=live_image, migrated=live_mark, deploy=live is not None, stale=stale
    )  # the running version, unchanged
    prev = previous if isinstance(previous, dict) else {}
    ended = finished(job) if job is not None else None
    record = None
    if job is not None and ended is not None:
        record = {
            "image": (job["metadata"].get("annotations") or {}).get(
                MIGRATION_IMAGE_ANNOTATION, image
            ),
            "result": SUCCEEDED if ended["type"] == "Complete" else FAILED,
            "finishedAt": (job.get("status") or {}).get("completionTime")
            or ended.get("lastTransitionTime"),
            "job": name,
        }
        if ended["type"] == "Failed":
            record["message"] = _failure_message(job, ended, pods)
    if record is not None and {k: prev.get(k) for k in ("job", "result")} == {
        "job": name,
        "result": record["result"],
    }:
        record = None  # said already: the words stay as first written (pods may go since)
    if (
        live_mark == name
        or (prev.get("job") == name and prev.get("result") == SUCCEEDED)
        or (record is not None and record["result"] == SUCCEEDED)
    ):
        return Gate(image=image, migrated=name, stale=stale, record=record)
    running = f"the Deployment keeps running {_short(live_image)}" if live else "no pods run yet"
    if (record is not None and record["result"] == FAILED) or (
        prev.get("job") == name and prev.get("result") == FAILED
    ):
        said = (record or prev).get("message") or f"Migration Job {name} failed."
        return _with(
            held,
            reason=MIGRATION_FAILED,
            message=f"{said} {_short(image)} is not rolled out; {running}. Fix the migration "
            "and push a new image (or change spec.migrate) to run it again.",
            record=record,
        )
    if job is not None:
        waiting = waiting_words(pods, job["metadata"].get("uid", ""))
        return _with(
            held,
            reason=MIGRATING,
            message=f"Migration Job {name} is running for {_short(image)}; {running} until it "
            "succeeds." + (f" Its pod is waiting: {waiting}." if waiting else ""),
        )
    busy = [j["metadata"]["name"] for j in others if _running(j)]
    left = _job_pods_left(pods)
    if busy or left:
        waiting = ", ".join(busy) if busy else "pods " + ", ".join(left)
        return _with(
            held,
            reason=MIGRATING,
            message=f"Waiting for the superseded migration ({waiting}) to stop before "
            f"migration Job {name} for {_short(image)} starts; {running}.",
        )
    return _with(
        held,
        create=manifest,
        reason=MIGRATING,
        message=f"Migration Job {name} is running for {_short(image)}; {running} until it "
        "succeeds.",
    )


def _with(gate: Gate, **changes: Any) -> Gate:
    return Gate(**{**gate.__dict__, **changes})


def _deleting(job: Obj) -> bool:
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def _image(live: Obj | None) -> str | None:
    if live is None:
        return None
    containers = (((live.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or [{}]
    image = containers[0].get("image")
    return str(image) if image else None


def token(snap_app: Obj, live: Obj | None, jobs: list[Obj], pods: list[Obj]) -> str | None:
    """What the gate's decision depends on beyond the spec, as one string (None for an app
    without a gate or Jobs): a reconcile whose plan is known renders again when it changes (a
    Job ended, its pods went, the Deployment's image moved)."""
    # the app as stored: a schema-less object may hold anything in spec and status
    spec, status = snap_app.get("spec"), snap_app.get("status")
    migrate = spec.get("migrate") if isinstance(spec, dict) else None
    jobs = [j for j in jobs if not is_scheduled_run(j)]  # a scheduled run is not the gate's
    if migrate is None and not jobs:
        return None
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    job_pods = [
        (p["metadata"]["name"], (p.get("status") or {}).get("phase"))
        for p in pods
        if (controller_of(p) or {}).get("kind") == "Job" and not is_scheduled_run(p)
    ]
    return json.dumps(
        [
            [(j["metadata"]["name"], j["metadata"].get("uid"), finished(j)) for j in jobs],
            sorted(job_pods),
            _image(live),
            annotations.get(MIGRATED_ANNOTATION),
            status.get("migration") if isinstance(status, dict) else None,
        ],
        sort_keys=True,
        default=str,
    )
