"""Turn what went wrong while reconciling into a :class:`Failure` for the PythonApp's status.

Reasons are stable CamelCase words (the operations guide lists each with what to do); the
message keeps the API server's own words and names the child kind and name, so
``kubectl get pyapp -o wide`` and ``kubectl describe`` say what failed without the log.
"""

from __future__ import annotations

from .client import ApiError
from .hardening import Finding
from .kinds import Obj, controller_of
from .status import Failure

NOT_OWNED = "NotOwned"
QUOTA_EXCEEDED = "QuotaExceeded"
FORBIDDEN = "Forbidden"
REJECTED = "Rejected"
CONFLICT = "Conflict"
API_UNAVAILABLE = "ApiUnavailable"
HARDENING_DRIFT = "HardeningDrift"
SECRET_MISSING = "SecretMissing"  # noqa: S105 (a reason, not a password)
CONFIG_MISSING = "ConfigMissing"
#: a condition message stays readable: an injected privileged container breaks many rules
MAX_FINDINGS_SAID = 8


def from_api_error(err: ApiError, kind: str, name: str, verb: str = "apply") -> Failure:
    """The failure to report when the API server refused or failed a request."""
    what = f"{verb} {kind} {name}: {err.message}"
    if err.status == 403 and "exceeded quota" in err.message:
        return Failure(QUOTA_EXCEEDED, f"ResourceQuota refused to {what}", stalled=True)
    if err.status in (401, 403):
        return Failure(FORBIDDEN, f"The API server refused to {what}", stalled=True)
    if err.status in (400, 404, 405, 413, 415, 422):
        return Failure(REJECTED, f"The API server rejected the {what}", stalled=True)
    if err.status == 409:
        return Failure(CONFLICT, f"Conflict on {what}", stalled=False)
    return Failure(
        API_UNAVAILABLE, f"Could not {what} (HTTP {err.status or 'no response'})", stalled=False
    )


def not_owned(kind: str, name: str, other: Obj | None) -> Failure:
    """A child's name is taken by an object this PythonApp does not control."""
    ref = controller_of(other) if other is not None else None
    if ref is not None:
        holder = f"is controlled by {ref.get('kind')} {ref.get('name')}"
    elif other is not None:
        holder = "has no controller"
    else:
        holder = "is held by another object"
    return Failure(
        NOT_OWNED,
        f"{kind} {name} already exists and {holder}; the operator leaves it as it is. "
        f"Rename the PythonApp or remove the {kind}.",
        stalled=True,
    )


def hardening_drift(found: list[tuple[str, str, Finding]]) -> Failure:
    """Another writer weakened a child's hardening where putting it back would fight it.

    ``found``: (child kind, child name, finding). Stalled: a person decides (remove the field,
    or stop the writer that adds it); the condition clears by itself once the field is gone.
    """
    by_child: dict[tuple[str, str], list[str]] = {}
    for kind, name, finding in found[:MAX_FINDINGS_SAID]:
        by_child.setdefault((kind, name), []).append(str(finding))
    said = "; ".join(
        f"{kind} {name}: {', '.join(items)}" for (kind, name), items in by_child.items()
    )
    if len(found) > MAX_FINDINGS_SAID:
        said += f"; and {len(found) - MAX_FINDINGS_SAID} more"
    return Failure(
        HARDENING_DRIFT,
        f"Another writer weakened the hardening, and putting it back would fight it: {said}. "
        "Remove the field (or stop what adds it); the app is Ready again once it is gone.",
        stalled=True,
    )


def secret_missing(said: str, *, running: bool, fields: str = "spec.secrets") -> Failure:
    """A referenced Secret, or a key the spec maps from it, does not exist: nothing is applied
    (pods that cannot start are never created, and a running version is not rolled onto
    them). Not stalled: a Secret is often created just after the app (a GitOps sync, an
    external secrets controller), and the app goes on by itself the moment it appears.
    ``fields``: the spec fields naming what is missing (image pull Secrets, ConfigMaps)."""
    return Failure(
        SECRET_MISSING, f"{said}: create it, or fix {fields}; {_waits(running)}.", stalled=False
    )


def config_missing(said: str, *, running: bool) -> Failure:
    """A referenced ConfigMap, or a key the spec maps from it, does not exist: as for a
    Secret (:func:`secret_missing`), with its own reason."""
    return Failure(
        CONFIG_MISSING, f"{said}: create it, or fix spec.config; {_waits(running)}.", stalled=False
    )


def _waits(running: bool) -> str:
    return (
        "the running version keeps serving until it exists"
        if running
        else "no pod is created until it exists"
    )
