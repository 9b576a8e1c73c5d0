"""What a Job and its pods say: whether it ended and how, read from the cache. Pure.

Shared by the migrations gate (:mod:`.migration`) and a scheduled app's runs (:mod:`.cron`):
both report a failed Job in the same words (its reason, the last attempt's exit code), never
from logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .kinds import COMPONENT_LABEL, Obj, controller_of

#: the component label of a scheduled app's Jobs and their pods (the app's profile)
CRON_COMPONENT = "cron"


def is_scheduled_run(obj: Obj) -> bool:
    """A Job (or its pod) a scheduled app's CronJob made, not a migration's: the migrations
    gate never waits for, nor re-plans on, a scheduled run."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(COMPONENT_LABEL) == CRON_COMPONENT


def finished(job: Obj) -> dict[str, Any] | None:
    """The Job's Complete or Failed condition, if it ended."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return dict(cond)
    return None


def containers(pods: list[Obj], job_uid: str) -> Iterator[Obj]:
    """The container statuses of the pods the Job with ``job_uid`` made."""
    for pod in pods:
        ref = controller_of(pod) or {}
        if ref.get("kind") == "Job" and ref.get("uid") == job_uid:
            yield from (pod.get("status") or {}).get("containerStatuses") or []


def exit_words(pods: list[Obj], job_uid: str) -> str:
    """The last failed attempt's exit code, in words, from the Job's pods (no logs)."""
    said = ""
    for status in containers(pods, job_uid):
        term = (status.get("state") or {}).get("terminated") or {}
        code = term.get("exitCode")
        if code is not None and code != 0:
            reason = term.get("reason")
            said = f"exit code {code}" + (f" ({reason})" if reason else "")
    return said


def waiting_words(pods: list[Obj], job_uid: str) -> str:
    """Why the Job's pod does not run yet, in the kubelet's words (ImagePullBackOff,
    CreateContainerConfigError, ...): the Job would only say so at its deadline."""
    for status in containers(pods, job_uid):
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason != "ContainerCreating":
            message = waiting.get("message")
            return f"{reason}: {message}" if message else str(reason)
    return ""
