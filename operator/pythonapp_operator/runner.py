"""Run the operator in the foreground: JSON logs, health endpoint, clean exit on SIGTERM."""

from __future__ import annotations

import logging
import re

import kopf

from .models import DNS1123_LABEL


def run_operator(
    namespaces: list[str],
    all_namespaces: bool,
    health: str = "127.0.0.1:8080",
    verbose: bool = False,
) -> int:
    """Start kopf with the project's handlers; returns when the operator stops.

    Without ``--namespace`` the operator watches all namespaces. The health endpoint listens on
    loopback by default; the in-cluster Deployment passes ``--health 0.0.0.0:8080`` so the
    kubelet can probe it.

    The scope travels to the startup handler (``handlers.configure``) in kopf's memo: with
    explicit namespaces it switches kopf's cluster scanning off, so the operator needs no
    cluster-wide permission at all.
    """
    # Exact names only: kopf would also take globs ("team-*") and negations ("!kube-system"),
    # but only by listing and watching every Namespace, which a namespaced installation may
    # not do; with scanning off it would silently serve none of them.
    bad = [ns for ns in namespaces if not re.match(DNS1123_LABEL, ns)]
    if bad:
        raise ValueError(f"not a namespace name (exact names only, no patterns): {bad}")
    clusterwide = all_namespaces or not namespaces
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
    if not verbose:
        # "Handler ... succeeded" for every watch event drowns what matters; our own
        # "reconciled" line says what was done.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    from . import handlers  # noqa: F401, PLC0415  (importing registers the handlers)

    kopf.run(
        standalone=True,  # no peering objects: one replica with a Recreate strategy
        clusterwide=clusterwide,
        namespaces=namespaces,
        liveness_endpoint=f"http://{health}/healthz",
        memo=kopf.Memo(clusterwide=clusterwide),
    )
    return 0
