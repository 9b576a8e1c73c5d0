"""A scheduled app's runs (``profile: cron``): what its CronJob and the Jobs it made say, as
``status.cron``. Pure: no I/O, no clock.

The CronJob's own status gives the last schedule time, the last success and the runs in
progress. The last run's result comes from the Jobs in the cache that the CronJob controls
(the operator's Job watch holds them: they carry the app's labels, and their controller, the
CronJob, tells them from migration Jobs, whose controller is the app). The newest of them by
creation is the last run, whether the schedule or a person (``kubectl create job
--from=cronjob/NAME``) started it. Once a run's Job is deleted (history limits), the last
result recorded stays on the status.
"""

from __future__ import annotations

from typing import Any

from .jobs import exit_words, finished
from .kinds import Obj, is_controlled_by
from .pods import Verdict, run_verdict

RUNNING, SUCCEEDED, FAILED, STOPPED = "Running", "Succeeded", "Failed", "Stopped"
#: the most of the Job's own words a failure message carries
_MAX_WORDS = 1024


def _runs(cronjob: Obj, jobs: list[Obj]) -> list[Obj]:
    uid = str((cronjob.get("metadata") or {}).get("uid"))
    return [j for j in jobs if is_controlled_by(j, uid)]


def _created(job: Obj) -> tuple[str, str]:
    """A run's place in time: its Job's creation (RFC 3339 sorts as text), then its name."""
    meta = job.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name")))


def _order(record: dict[str, Any]) -> tuple[str, str]:
    """A recorded run's place in time, as :func:`_created` gives a Job's."""
    return (str(record.get("startedAt") or ""), str(record.get("job")))


def _newest(runs: list[Obj]) -> Obj | None:
    return max(runs, key=_created, default=None)


def _run_record(job: Obj, pods: list[Obj]) -> dict[str, Any]:
    meta = job["metadata"]
    record: dict[str, Any] = {"job": meta["name"], "result": RUNNING}
    if meta.get("creationTimestamp"):
        record["startedAt"] = meta["creationTimestamp"]
    ended = finished(job)
    if ended is None:
        return record
    record["result"] = SUCCEEDED if ended["type"] == "Complete" else FAILED
    at = (job.get("status") or {}).get("completionTime") or ended.get("lastTransitionTime")
    if at:
        record["finishedAt"] = at
    if record["result"] == FAILED:
        reason = ended.get("reason") or "Failed"
        words = f"{reason}: {ended['message']}" if ended.get("message") else reason
        code = exit_words(pods, str(meta.get("uid", "")))
        last = f"; last attempt: {code}" if code else ""
        record["message"] = f"Job {meta['name']} failed ({words[:_MAX_WORDS]}{last})."
    return record


def observe(
    cronjob: Obj | None, jobs: list[Obj], pods: list[Obj], previous: object
) -> dict[str, Any]:
    """``status.cron`` from the live CronJob (None: not created yet), the app's Jobs and pods,
    and the status's last ``cron`` (``previous``), whose last run stays when no Job of the
    CronJob is left."""
    prev = previous if isinstance(previous, dict) else {}
    out: dict[str, Any] = {}
    if cronjob is not None:
        status = cronjob.get("status") or {}
        for key in ("lastScheduleTime", "lastSuccessfulTime"):
            if status.get(key):
                out[key] = status[key]
        out["active"] = len(status.get("active") or [])
        if (cronjob.get("spec") or {}).get("suspend") is True:
            out["suspended"] = True
    runs = _runs(cronjob, jobs) if cronjob is not None else []
    job = _newest(runs)
    last = prev.get("lastRun") if isinstance(prev.get("lastRun"), dict) else None
    if (
        last is not None
        and last.get("result") == RUNNING
        and cronjob is not None
        and all(j["metadata"].get("name") != last.get("job") for j in runs)
    ):
        # a run said to be running whose Job is gone did not end: deleted by a person, or by
        # concurrencyPolicy Replace for a newer run
        last = {**last, "result": STOPPED, "message": "Its Job was deleted before it ended."}
    if job is not None and last is not None and _order(last) > _created(job):
        job = None  # the newest run's Job is gone (history limits), an older one is left
    if job is not None:
        record = _run_record(job, pods)
        if last is not None and (last.get("job"), last.get("result")) == (
            record["job"],
            record["result"],
        ):
            record = dict(last)  # said already: the words stay as first written (pods go)
        last = record
    if last is not None:
        out["lastRun"] = last
    return out


def waiting(cronjob: Obj | None, jobs: list[Obj], pods: list[Obj]) -> Verdict | None:
    """Why the newest run, still running, has not started (:func:`.pods.run_verdict`), or
    None."""
    if cronjob is None:
        return None
    job = _newest(_runs(cronjob, jobs))
    if job is None or finished(job) is not None:
        return None
    meta = job["metadata"]
    return run_verdict(pods, str(meta.get("uid")), str(meta.get("name")))
