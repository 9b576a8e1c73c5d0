"""Warnings about valid but risky choices in a PythonApp. Pure: model in, problems out.

The models refuse what must never run (``latest``, no memory limit, root); this module points
at what may run but usually should not, without failing ``pythonapp validate`` (unless
``--strict``): one replica, a worker nobody can tell is hung, no CPU request, a password in
plain ``env``. Each warning names the field to change and says why.
"""

from __future__ import annotations

import functools
import re
import zoneinfo

from .api.models import PythonApp
from .api.validation import Problem
from .render import DEFAULT_HEALTH_PATH, DEFAULT_READINESS_PATH, DEFAULT_REQUESTS

#: env names that usually hold a credential: the name ends in one of these words.
SECRETISH_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|(API|PRIVATE|SECRET|ACCESS)_?KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
#: a URL with a password in it (postgres://user:password@host/db).
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@functools.cache
def _known_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (the system database, or the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def advise(app: PythonApp) -> list[Problem]:
    """Warnings for one valid PythonApp, in field order."""
    spec = app.spec
    out: list[Problem] = []

    def warn(path: str, message: str) -> None:
        out.append(Problem(app.namespace, app.name, path, message, warning=True))

    if spec.replicas == 0:
        warn("spec.replicas", "0 replicas: nothing runs (fine while the app is paused)")
    elif spec.replicas == 1:
        warn(
            "spec.replicas",
            "one replica: every rollout, node drain or crash is downtime; use 2 or more",
        )

    for index, var in enumerate(spec.env):
        if var.value and (SECRETISH_NAME.search(var.name) or URL_WITH_PASSWORD.search(var.value)):
            warn(
                f"spec.env[{index}].value",
                f"{var.name} looks like a credential in plain text (anyone who can read the "
                "PythonApp sees it): put it in a Secret and use spec.secrets",
            )

    for index, secret in enumerate(spec.secrets):
        if secret.rotation == "none" and secret.env:
            warn(
                f"spec.secrets[{index}].rotation",
                f"rotation none with env mappings: a change to Secret {secret.name} never "
                "reaches the env vars (only the mounted files update); use restart",
            )

    for index, config in enumerate(spec.config):
        if config.rotation == "none" and config.env:
            warn(
                f"spec.config[{index}].rotation",
                f"rotation none with env mappings: a change to ConfigMap {config.name} never "
                "reaches the env vars (only the mounted files update); use restart",
            )

    if spec.resources.requests.cpu is None:
        cpu = DEFAULT_REQUESTS["cpu"]
        warn(
            "spec.resources.requests.cpu",
            f"no CPU request: the default {cpu} applies; request what the app needs so the "
            "scheduler places it on a node that has it",
        )

    zone = spec.cron.time_zone if spec.cron is not None else None
    if zone is not None and zone not in _known_zones():
        warn(
            "spec.cron.timeZone",
            f"{zone} is not in this machine's time zone database: if the cluster's API server "
            "does not know it either, it refuses the CronJob (the app shows Stalled)",
        )

    if spec.profile == "worker":
        if spec.probes.liveness is None:
            warn(
                "spec.probes.liveness",
                "a worker without a liveness probe is never restarted when it hangs: add a "
                "command that checks progress (e.g. the age of a heartbeat file)",
            )
        if spec.probes.readiness is None:
            warn(
                "spec.probes.readiness",
                "a worker without a readiness probe counts as available as soon as it starts: "
                "a broken release rolls out to every pod",
            )
    else:
        liveness, readiness = spec.probes.liveness, spec.probes.readiness
        live_path = DEFAULT_HEALTH_PATH if liveness is None else liveness.path
        ready_path = DEFAULT_READINESS_PATH if readiness is None else readiness.path
        if live_path is not None and live_path == ready_path:
            warn(
                "spec.probes.readiness.path",
                f"readiness probes the same path as liveness ({live_path}): a failing "
                "dependency would restart every pod instead of taking it out of the Service",
            )

    if spec.termination_grace_period_seconds == 0:
        warn(
            "spec.terminationGracePeriodSeconds",
            "0 seconds: pods are killed at once and in-flight work is cut",
        )
    if spec.automount_service_account_token:
        warn(
            "spec.automountServiceAccountToken",
            "the pods get a Kubernetes API token: keep it off unless the app calls the API",
        )
    return out
