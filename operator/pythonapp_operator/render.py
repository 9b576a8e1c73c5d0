"""The pure renderer: one validated PythonApp -> every object the operator applies.

No I/O and no clock: the same input always gives the same manifests, in the same key order,
so ``pythonapp render`` diffs read well in pull requests and server-side apply sees no change
when nothing changed. The controller, ``pythonapp render`` and the golden tests all call
:func:`render`; there is no second source of truth.

What is rendered and why (see notes/policy.md for the checkers' side):

- Deployment: digest image with ``imagePullPolicy: Always``, restricted securityContext with
  a numeric non-root user, read-only root filesystem and a size-limited ``/tmp`` emptyDir,
  Secrets and ConfigMaps as read-only volumes (never subPath, so rotated ones reach the pod),
  the image pull Secrets, probes,
  requests/limits, grace period and a preStop drain for web apps, soft anti-affinity and
  zone spreading.
- ServiceAccount: a dedicated identity with token automount off.
- Service (web only): ``http`` port 80 -> the named container port.
- PodDisruptionBudget (when more than one pod runs, or asked for): ``maxUnavailable`` (1 by
  default, never a minAvailable) with ``AlwaysAllow`` for unhealthy pods, so a node drain is
  never blocked by a crash-looping app. At one pod a budget could only delay a drain.
- HorizontalPodAutoscaler (``spec.autoscaling``): autoscaling/v2 on the Deployment, which then
  carries no ``replicas`` (the autoscaler owns the count; the reconcile hands the field over
  so the running count is kept: :mod:`.controller.reconcile`).
- Job (``spec.migrate``): the migrations gate, the new image running the migration command
  with the app's env, Secrets and pod hardening; the reconcile holds the Deployment's image
  back until it succeeded (:mod:`.controller.migration`).
- NetworkPolicy: ingress only to the app port (none for workers), egress open (apps call
  databases and APIs the operator cannot know about). Both rule lists and the host
  namespaces are written even when empty or false, so the operator owns them and puts back
  what another writer opens (see :mod:`.controller.hardening`).
- HTTPRoute or Ingress (``spec.expose``, web only): the host and path prefix to the Service;
  an HTTPRoute where the cluster serves the Gateway API and a Gateway is configured, else an
  Ingress (:mod:`.routing`). The NetworkPolicy is not widened for it: a web app's admits
  every client to the app port already, so the Gateway's or ingress controller's pods reach it.

Workers get the PDB (on the same terms) and the NetworkPolicy too: they also run several
replicas and should not accept connections they do not serve.

Scheduled apps (``profile: cron``) get a CronJob instead of the Deployment, with the same pod
template (:func:`_pod_spec` and :func:`_container`, shared with the migration Job), the
ServiceAccount and a worker's deny-ingress NetworkPolicy: no Service, probes, PDB or HPA.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .api.image import parse_image
from .api.models import (
    RESOURCE_NAMES,
    Probe,
    PythonApp,
    PythonAppSpec,
    ScalingRules,
    quantity_value,
)
from .routing import HTTPROUTE, RouteDefaults, Routing

Manifest = dict[str, Any]

#: the pod template annotation prefix carrying a hash of one Secret's data (rotation: restart),
#: followed by the Secret's volume name (:func:`volume_name`: a DNS label whatever the name)
SECRET_HASH_PREFIX = "checksum.pythonapp.dev/"  # noqa: S105 (an annotation name)
#: the Deployment's annotation recording, for each Secret whose content the operator read, the
#: resourceVersion its hash and keys were read at (JSON: name -> resourceVersion), so a
#: restarted or newly elected operator need not read a Secret that has not changed since
SECRET_VERSIONS_ANNOTATION = "pythonapp.dev/secret-versions"  # noqa: S105 (an annotation name)
#: the same two for ConfigMaps (``spec.config``): the hash annotation is the prefix above and the
#: ConfigMap's volume name (:func:`config_volume_name`, ``config-...``, never a Secret's
#: ``secret-...``), the versions are recorded apart (a ConfigMap and a Secret may share a name)
CONFIG_HASH_PREFIX = SECRET_HASH_PREFIX
CONFIG_VERSIONS_ANNOTATION = "pythonapp.dev/config-versions"

CONTAINER_NAME = "app"
PORT_NAME = "http"
SERVICE_PORT = 80
MANAGED_BY = "pythonapp-operator"
#: Default readiness path: the same endpoint as liveness, told apart by a query parameter the
#: app may read (frameworks ignore it otherwise). Identical probes would let a failing
#: dependency restart every pod, and kube-score refuses them.
DEFAULT_READINESS_PATH = "/health?probe=readiness"
#: Annotations that record, on the object, why a checker's rule does not apply.
SECRET_ENV_EXEMPTIONS = {
    "ignore-check.kube-linter.io/read-secret-from-env-var": (
        "the PythonApp maps Secret keys to env vars explicitly (spec.secrets[].env)"
    ),
    "checkov.io/skip1": "CKV_K8S_35=the PythonApp maps Secret keys to env vars explicitly",
}
WORKER_NETPOL_EXEMPTIONS = {
    "polaris.fairwinds.com/missingNetworkPolicy-exempt": "true",
    "pythonapp.dev/missingNetworkPolicy-exempt-reason": (
        "a worker accepts no connections: its NetworkPolicy denies all ingress, which Polaris "
        "cannot tell from a missing rule"
    ),
}

#: on a CronJob: why checkers' rules for long-running pods do not apply to its runs
CRON_EXEMPTIONS = {
    "ignore-check.kube-linter.io/no-liveness-probe": (
        "a scheduled run serves nothing and runs to its end; activeDeadlineSeconds bounds it"
    ),
    "ignore-check.kube-linter.io/no-readiness-probe": (
        "a scheduled run serves nothing: no Service selects its pod"
    ),
    "ignore-check.kube-linter.io/restart-policy": (
        "restartPolicy Never: each failed attempt is a pod of its own that keeps its exit code, "
        "which the operator reports on the PythonApp"
    ),
}

#: on an autoscaled Deployment: Polaris' deploymentMissingReplicas wants replicas >= 2 on every
#: Deployment, and kube-score's deployment-targeted-by-hpa-does-not-have-replicas wants none
#: on one an HPA scales (an applied count would fight it). The HPA's floor is what Polaris asks.
AUTOSCALED_EXEMPTIONS = {
    "polaris.fairwinds.com/deploymentMissingReplicas-exempt": "true",
    "pythonapp.dev/deploymentMissingReplicas-exempt-reason": (
        "a HorizontalPodAutoscaler owns the replica count (spec.autoscaling.minReplicas is the "
        "floor); an applied replicas would fight it"
    ),
}

# name -> Kubernetes default when the user leaves it unset
DEFAULT_REQUESTS = {"cpu": "100m", "ephemeral-storage": "128Mi"}
DEFAULT_LIMITS = {"cpu": "1", "ephemeral-storage": "512Mi"}

# probe kind -> (periodSeconds, timeoutSeconds, failureThreshold)
PROBE_DEFAULTS = {
    "liveness": (30, 10, 3),
    "readiness": (10, 5, 3),
    "startup": (5, 5, 12),
}
DEFAULT_HEALTH_PATH = "/health"
#: on a Deployment whose replica count an autoscaler owns (its value names the HPA): tells a
#: person (and ``kubectl describe``) why the operator applies no ``replicas`` there
SCALED_BY_ANNOTATION = "pythonapp.dev/scaled-by"
DEFAULT_MAX_UNAVAILABLE = 1

MIGRATE_CONTAINER_NAME = "migrate"
MIGRATION_COMPONENT = "migration"
#: a finished migration Job (and its pod, for its logs) stays this long, then the TTL
#: controller deletes it; the app's status.migration keeps the result
MIGRATION_TTL_SECONDS = 3600
#: on the Deployment: the migration Job whose success its image passed (a record that
#: outlives the Job, so a Job deleted by its TTL is not run again)
MIGRATED_ANNOTATION = "pythonapp.dev/migrated-by"
#: on the migration Job: the image it migrates to (read by the status)
MIGRATION_IMAGE_ANNOTATION = "pythonapp.dev/migration-image"
#: on the migration Job: why three checkers' rules do not apply to it
MIGRATION_EXEMPTIONS = {
    "ignore-check.kube-linter.io/no-liveness-probe": (
        "a migration Job serves nothing and runs to its end; activeDeadlineSeconds bounds it"
    ),
    "ignore-check.kube-linter.io/no-readiness-probe": (
        "a migration Job serves nothing: no Service selects its pod"
    ),
    "ignore-check.kube-linter.io/restart-policy": (
        "restartPolicy Never: each failed attempt is a pod of its own that keeps its exit code, "
        "which the operator reports (OnFailure restarts in place, and the Job controller "
        "deletes the pod when it gives up)"
    ),
    "polaris.fairwinds.com/metadataAndInstanceMismatched-exempt": "true",
    "pythonapp.dev/metadataAndInstanceMismatched-exempt-reason": (
        "the instance label names the app the Job migrates, so the app's NetworkPolicy covers "
        "its pod and the operator's watches find it by app"
    ),
}


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select the app's pods: stable for the object's lifetime."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def common_labels(app: PythonApp) -> dict[str, str]:
    """Standard labels for every child. The parent's own labels are not copied: GitOps
    tracking labels (e.g. Argo CD's instance label) must not leak onto children."""
    return {
        **selector_labels(app.name),
        "app.kubernetes.io/component": app.spec.profile,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _metadata(app: PythonApp, name: str | None = None) -> Manifest:
    meta: Manifest = {"name": name or app.name}
    if app.namespace:
        meta["namespace"] = app.namespace
    meta["labels"] = common_labels(app)
    if app.metadata.uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": app.api_version,
                "kind": app.kind,
                "name": app.name,
                "uid": app.metadata.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta


def volume_name(secret_name: str) -> str:
    """A DNS-1123 label for a Secret's volume: Secret names may hold dots and be 253 long."""
    return _volume_name("secret-", secret_name)


def config_volume_name(config_name: str) -> str:
    """A DNS-1123 label for a ConfigMap's volume (``config-...``: never a Secret volume's)."""
    return _volume_name("config-", config_name)


def _volume_name(prefix: str, name: str) -> str:
    base = prefix + re.sub(r"[^a-z0-9-]", "-", name)
    if len(base) <= 63:
        return base
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{base[:54].rstrip('-')}-{digest}"


def image_pull_secrets(app: PythonApp) -> list[Manifest]:
    """The pods' ``imagePullSecrets``: the app's ``spec.imagePullSecrets``, in its order.

    The one place the list is made (the Deployment's, the CronJob's and the migration Job's
    pods share it). The platform policy's default pull Secrets are already in that list,
    after the app's own: the operator renders the app with the policy's defaults applied
    (:func:`.platformpolicy.with_defaults`)."""
    return [{"name": ref.name} for ref in app.spec.image_pull_secrets]


def _resources(spec: PythonAppSpec) -> Manifest:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for resource in RESOURCE_NAMES:
        req = spec.resources.requests.get(resource)
        lim = spec.resources.limits.get(resource)
        if resource == "memory":
            req = req or lim  # memory is not compressible: request what the limit allows
        if req is None:
            req = DEFAULT_REQUESTS[resource]
            if lim is not None and quantity_value(lim) < quantity_value(req):
                req = lim  # a default request never goes above the user's limit
        if lim is None:
            lim = DEFAULT_LIMITS[resource]
            if quantity_value(lim) < quantity_value(req):
                lim = req
        requests[resource], limits[resource] = req, lim
    return {"requests": requests, "limits": limits}


def _probe(kind: str, probe: Probe | None, spec: PythonAppSpec) -> Manifest | None:
    period, timeout, failures = PROBE_DEFAULTS[kind]
    if probe is None:
        if spec.profile != "web":
            return None
        probe = Probe()
    handler: Manifest
    if probe.command is not None:
        handler = {"exec": {"command": list(probe.command)}}
    else:
        default = DEFAULT_READINESS_PATH if kind == "readiness" else DEFAULT_HEALTH_PATH
        handler = {"httpGet": {"path": probe.path or default, "port": PORT_NAME}}
    out: Manifest = dict(handler)
    if probe.initial_delay_seconds is not None:
        out["initialDelaySeconds"] = probe.initial_delay_seconds
    out["periodSeconds"] = probe.period_seconds or period
    out["timeoutSeconds"] = probe.timeout_seconds or timeout
    out["failureThreshold"] = probe.failure_threshold or failures
    out["successThreshold"] = 1
    return out


def _env(spec: PythonAppSpec) -> list[Manifest]:
    env: list[Manifest] = [{"name": e.name, "value": e.value} for e in spec.env]
    for secret in spec.secrets:
        env.extend(
            {
                "name": var.name,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": var.key}},
            }
            for var in secret.env
        )
    for config in spec.config:
        env.extend(
            {
                "name": var.name,
                "valueFrom": {"configMapKeyRef": {"name": config.name, "key": var.key}},
            }
            for var in config.env
        )
    return env


def _container_security(spec: PythonAppSpec) -> Manifest:
    """The container's securityContext: the app's and the migration Job's alike."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": spec.security_context.run_as_user,
        "runAsGroup": spec.security_context.run_as_group,
        # add is written empty so the operator's apply owns it (an atomic list): a
        # capability another writer adds is put back, not kept
        "capabilities": {"drop": ["ALL"], "add": []},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _mounts(spec: PythonAppSpec) -> list[Manifest]:
    """The writable /tmp, each Secret and each ConfigMap, read-only (never subPath)."""
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    mounts.extend(
        {"name": volume_name(s.name), "mountPath": s.effective_mount_path, "readOnly": True}
        for s in spec.secrets
    )
    mounts.extend(
        {"name": config_volume_name(c.name), "mountPath": c.effective_mount_path, "readOnly": True}
        for c in spec.config
    )
    return mounts


def _container(app: PythonApp, image: str) -> Manifest:
    spec = app.spec
    container: Manifest = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "Always",
    }
    if spec.command is not None:
        container["command"] = list(spec.command)
    if spec.args is not None:
        container["args"] = list(spec.args)
    port = spec.effective_port
    if port is not None:
        container["ports"] = [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}]
    env = _env(spec)
    if env:
        container["env"] = env
    container["resources"] = _resources(spec)
    for kind in ("startup", "liveness", "readiness"):
        probe = _probe(kind, getattr(spec.probes, kind), spec)
        if probe is not None:
            container[f"{kind}Probe"] = probe
    prestop = spec.effective_prestop_seconds
    if prestop > 0:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": prestop}}}
    container["securityContext"] = _container_security(spec)
    container["volumeMounts"] = _mounts(spec)
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return container


def _migrate_container(app: PythonApp) -> Manifest:
    """The migration: the new image (always ``spec.image``) with the app's env, Secrets,
    resources and container hardening; no port, no probes (it serves nothing and runs to its
    end, bounded by the Job's deadline)."""
    spec = app.spec
    migrate = spec.migrate
    if migrate is None:
        raise ValueError(f"PythonApp {app.name} has no spec.migrate")
    container: Manifest = {
        "name": MIGRATE_CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": "Always",
        "command": list(migrate.command),
    }
    if migrate.args is not None:
        container["args"] = list(migrate.args)
    env = _env(spec)
    if env:
        container["env"] = env
    container["resources"] = _resources(spec)
    container["securityContext"] = _container_security(spec)
    container["volumeMounts"] = _mounts(spec)
    # File, not FallbackToLogsOnError: the operator reports a failed migration by its exit
    # code and the Job's reason, and a migration's last log lines stay out of the pod status
    container["terminationMessagePolicy"] = "File"
    return container


def _pod_spec(app: PythonApp, container: Manifest, *, spread: bool = True) -> Manifest:
    """The pod hardening the app's pods and its migration Job's share: identity, no token,
    no host namespaces, the pod securityContext, the /tmp, Secret and ConfigMap volumes, the
    image pull Secrets. ``spread``:
    the Deployment's anti-affinity and zone spreading (a one-pod Job needs none)."""
    spec = app.spec
    sc = spec.security_context
    selector = {"matchLabels": selector_labels(app.name)}
    volumes: list[Manifest] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": spec.tmp_size_limit}},
    ]
    volumes.extend(
        {
            "name": volume_name(s.name),
            # 0440: readable by the app's group (fsGroup), by nobody else.
            "secret": {"secretName": s.name, "defaultMode": 0o440},
        }
        for s in spec.secrets
    )
    volumes.extend(
        {
            "name": config_volume_name(c.name),
            # 0440 as for Secrets: the app's group reads them, nobody else needs to
            "configMap": {"name": c.name, "defaultMode": 0o440},
        }
        for c in spec.config
    )
    pod: Manifest = {
        "restartPolicy": "Always" if spread else "Never",
        "serviceAccountName": app.name,
        "automountServiceAccountToken": spec.automount_service_account_token,
        "enableServiceLinks": False,
        # Written although false is the default: the operator's apply then owns them, so one
        # set by another writer is put back (the API server stores no false here).
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": sc.run_as_user,
            "runAsGroup": sc.run_as_group,
            "fsGroup": sc.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spread:
        pod["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": selector,
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            }
        ]
    pulls = image_pull_secrets(app)
    if pulls:
        pod["imagePullSecrets"] = pulls
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return pod


def secret_annotations(app: PythonApp, hashes: Mapping[str, str]) -> dict[str, str]:
    """The pod template's annotations for the Secrets with ``rotation: restart``: a hash of each
    one's data (computed by the operator, :mod:`.controller.secretrefs`), so a change rolls the
    pods once. Secrets without a known hash (offline rendering) get none. (Image pull Secrets
    never get one: they are used at pull time only, and a pod that runs needs no restart.)"""
    return {
        SECRET_HASH_PREFIX + volume_name(s.name): hashes[s.name]
        for s in app.spec.secrets
        if s.rotation == "restart" and s.name in hashes
    }


def config_annotations(app: PythonApp, hashes: Mapping[str, str]) -> dict[str, str]:
    """The same for the ConfigMaps with ``rotation: restart`` (``spec.config``)."""
    return {
        CONFIG_HASH_PREFIX + config_volume_name(c.name): hashes[c.name]
        for c in app.spec.config
        if c.rotation == "restart" and c.name in hashes
    }


def _versions(versions: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(versions.items())), separators=(",", ":"))


def _pod_metadata(
    app: PythonApp,
    labels: Mapping[str, str],
    secret_hashes: Mapping[str, str] | None,
    config_hashes: Mapping[str, str] | None,
) -> Manifest:
    """The pod template's metadata of a Deployment or a CronJob's runs: the app's labels, the
    default container, and the hashes that roll the pods (or reach the next run) when a
    Secret or ConfigMap with ``rotation: restart`` changes."""
    return {
        "labels": labels,
        "annotations": {
            "kubectl.kubernetes.io/default-container": CONTAINER_NAME,
            **secret_annotations(app, secret_hashes or {}),
            **config_annotations(app, config_hashes or {}),
        },
    }


def _workload_annotations(
    app: PythonApp,
    secret_versions: Mapping[str, str] | None,
    config_versions: Mapping[str, str] | None,
) -> dict[str, str]:
    """The Deployment's or CronJob's own annotations: the record of the Secret and ConfigMap
    versions read (:data:`SECRET_VERSIONS_ANNOTATION`, :data:`CONFIG_VERSIONS_ANNOTATION`)
    and why checkers' rules do not apply."""
    annotations: dict[str, str] = {}
    if secret_versions:
        annotations[SECRET_VERSIONS_ANNOTATION] = _versions(secret_versions)
    if config_versions:
        annotations[CONFIG_VERSIONS_ANNOTATION] = _versions(config_versions)
    if any(secret.env for secret in app.spec.secrets):
        annotations.update(SECRET_ENV_EXEMPTIONS)
    if app.spec.effective_port is None:
        annotations.update(WORKER_NETPOL_EXEMPTIONS)
    return annotations


#: where each workload kind holds its pod template
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_template(workload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pod template of a Deployment or CronJob (as rendered or as stored), or {}."""
    if not workload:
        return {}
    node: Any = workload
    for key in POD_TEMPLATE_PATHS.get(str(workload.get("kind")), POD_TEMPLATE_PATHS["Deployment"]):
        node = node.get(key) if isinstance(node, Mapping) else None
    return dict(node) if isinstance(node, Mapping) else {}


def deployment(
    app: PythonApp,
    secret_hashes: Mapping[str, str] | None = None,
    secret_versions: Mapping[str, str] | None = None,
    *,
    config_hashes: Mapping[str, str] | None = None,
    config_versions: Mapping[str, str] | None = None,
    image: str | None = None,
    migrated: str | None = None,
) -> Manifest:
    """The app's Deployment; ``secret_hashes`` (Secret name -> hash of its data) roll its pods
    when a Secret with ``rotation: restart`` changes; ``secret_versions`` (Secret name ->
    resourceVersion) record where the hashes came from (:data:`SECRET_VERSIONS_ANNOTATION`).
    Neither says anything of a value: a version is not secret, and the hash is keyed.
    ``config_hashes`` and ``config_versions`` are the same for the ConfigMaps of ``spec.config``
    (:data:`CONFIG_VERSIONS_ANNOTATION`).

    ``image`` is the image the pods run (default ``spec.image``): while a migrations gate
    holds a new image back, the reconcile passes the running one. ``migrated`` names the
    migration Job whose success the pods' image passed (:data:`MIGRATED_ANNOTATION`)."""
    labels = common_labels(app)
    meta = _metadata(app)
    annotations: dict[str, str] = {}
    if migrated is not None:
        annotations[MIGRATED_ANNOTATION] = migrated
    annotations.update(_workload_annotations(app, secret_versions, config_versions))
    if app.spec.autoscaling is not None:
        annotations[SCALED_BY_ANNOTATION] = f"HorizontalPodAutoscaler/{app.name}"
        annotations.update(AUTOSCALED_EXEMPTIONS)
    if annotations:
        meta["annotations"] = annotations
    # no replicas while an autoscaler owns them: an applied value would fight it
    replicas = {} if app.spec.autoscaling is not None else {"replicas": app.spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            **replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": selector_labels(app.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": _pod_metadata(app, labels, secret_hashes, config_hashes),
                "spec": _pod_spec(app, _container(app, image or app.spec.image)),
            },
        },
    }


def service_account(app: PythonApp) -> Manifest:
    """A dedicated identity per app, with no token unless asked."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(app),
        "automountServiceAccountToken": app.spec.automount_service_account_token,
    }


def service(app: PythonApp) -> Manifest:
    """ClusterIP Service on port 80 -> the named app port (web only)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(app.name),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def pod_disruption_budget(app: PythonApp) -> Manifest:
    """At most ``maxUnavailable`` pods (default 1) down by voluntary disruption; unhealthy
    pods never block a drain."""
    disruption = app.spec.disruption
    max_unavailable = (
        disruption.max_unavailable
        if disruption is not None and disruption.max_unavailable is not None
        else DEFAULT_MAX_UNAVAILABLE
    )
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(app),
        "spec": {
            "maxUnavailable": max_unavailable,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": selector_labels(app.name)},
        },
    }


def _scaling_rules(rules: ScalingRules) -> Manifest:
    out: Manifest = {}
    if rules.stabilization_window_seconds is not None:
        out["stabilizationWindowSeconds"] = rules.stabilization_window_seconds
    if rules.select_policy is not None:
        out["selectPolicy"] = rules.select_policy
    if rules.policies is not None:
        out["policies"] = [
            {"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
            for p in rules.policies
        ]
    return out


def _utilization(resource: str, percent: int) -> Manifest:
    return {
        "type": "Resource",
        "resource": {
            "name": resource,
            "target": {"type": "Utilization", "averageUtilization": percent},
        },
    }


def horizontal_pod_autoscaler(app: PythonApp) -> Manifest | None:
    """An autoscaling/v2 HPA on the Deployment (``spec.autoscaling``), or None. Utilization is
    measured against the requests the renderer always sets (cpu, and memory equal to its
    limit unless given), so a target always has a base."""
    scaling = app.spec.autoscaling
    if scaling is None:
        return None
    metrics: list[Manifest] = []
    cpu = scaling.effective_cpu_target
    if cpu is not None:
        metrics.append(_utilization("cpu", cpu))
    if scaling.target_memory_utilization_percentage is not None:
        metrics.append(_utilization("memory", scaling.target_memory_utilization_percentage))
    spec: Manifest = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
    }
    behavior = scaling.behavior
    if behavior is not None:
        rendered = {
            key: _scaling_rules(rules)
            for key, rules in (("scaleUp", behavior.scale_up), ("scaleDown", behavior.scale_down))
            if rules is not None
        }
        if rendered:
            spec["behavior"] = rendered
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(app),
        "spec": spec,
    }


def network_policy(app: PythonApp) -> Manifest:
    """Ingress only to the app port (nothing for workers); egress open."""
    spec: Manifest = {
        # One label only: instance is unique per app in a namespace.
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": app.name}},
        "policyTypes": ["Ingress", "Egress"],
    }
    # ingress and egress are atomic lists: the operator's apply owns each whole, so a rule
    # another writer adds is removed by drift correction. A worker's is written empty (no
    # inbound traffic at all) for the same reason: left out, a rule added later would stay.
    if app.spec.effective_port is not None:
        spec["ingress"] = [{"ports": [{"port": PORT_NAME, "protocol": "TCP"}]}]
    else:
        spec["ingress"] = []
    spec["egress"] = [{}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(app),
        "spec": spec,
    }


def migration_job_name(app: PythonApp) -> str:
    """The migration Job's name: the app's name and a hash of what the migration runs (image,
    command, args), so a new image or command gets a new Job and the same ones the same Job.
    At most 63 characters (the Job controller puts the name in a pod label)."""
    migrate = app.spec.migrate
    if migrate is None:
        raise ValueError(f"PythonApp {app.name} has no spec.migrate")
    ran = json.dumps([app.spec.image, migrate.command, migrate.args], separators=(",", ":"))
    digest = hashlib.sha256(ran.encode()).hexdigest()[:10]
    return f"{app.name[:44].rstrip('-')}-migrate-{digest}"


def migration_labels(app: PythonApp) -> dict[str, str]:
    """The migration Job's labels, and its pod's: the app's instance label (so the operator's
    watches index them by app and the app's NetworkPolicy covers the pod), but a name of its
    own, so the app's selector (Service, PodDisruptionBudget, Deployment) never matches a
    migration pod."""
    return {
        "app.kubernetes.io/name": migration_job_name(app),
        "app.kubernetes.io/instance": app.name,
        "app.kubernetes.io/component": MIGRATION_COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def migration_job(app: PythonApp) -> Manifest | None:
    """The migrations gate's Job (``spec.migrate``), or None: the new image with the app's
    env, Secrets, resources and pod hardening, one pod at a time, bounded by
    ``timeoutSeconds`` (activeDeadlineSeconds) and ``backoffLimit``, deleted
    :data:`MIGRATION_TTL_SECONDS` after it finished (the app's status keeps the result)."""
    migrate = app.spec.migrate
    if migrate is None:
        return None
    name = migration_job_name(app)
    labels = migration_labels(app)
    meta = _metadata(app, name)
    meta["labels"] = labels
    meta["annotations"] = {
        MIGRATION_IMAGE_ANNOTATION: app.spec.image,
        **MIGRATION_EXEMPTIONS,
        **(SECRET_ENV_EXEMPTIONS if any(s.env for s in app.spec.secrets) else {}),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": migrate.backoff_limit,
            "activeDeadlineSeconds": migrate.timeout_seconds,
            "ttlSecondsAfterFinished": MIGRATION_TTL_SECONDS,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "kubectl.kubernetes.io/default-container": MIGRATE_CONTAINER_NAME
                    },
                },
                "spec": _pod_spec(app, _migrate_container(app), spread=False),
            },
        },
    }


# -- spec.expose: the route (HTTPRoute or Ingress) to the app's Service ------------------------

GATEWAY_GROUP = "gateway.networking.k8s.io"


def http_route(app: PythonApp, defaults: RouteDefaults) -> Manifest:
    """A Gateway API HTTPRoute (v1) for ``spec.expose``: the host and path prefix to the app's
    Service, attached to the Gateway ``spec.expose.class`` names in the platform's Gateway
    namespace, or to the platform's Gateway. Every field the CRD would default is written as
    its default, so the stored route is what was applied (no drift from defaulting). TLS is the
    Gateway listener's: an HTTPRoute carries none."""
    expose, gateway = app.spec.expose, defaults.gateway
    if expose is None or gateway is None:
        raise ValueError(f"PythonApp {app.name}: an HTTPRoute needs spec.expose and a Gateway")
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(app),
        "spec": {
            "parentRefs": [
                {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "namespace": gateway.namespace,
                    "name": expose.entry_class or gateway.name,
                }
            ],
            "hostnames": [expose.host],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": expose.path}}],
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": app.name,
                            "port": SERVICE_PORT,
                            "weight": 1,
                        }
                    ],
                }
            ],
        },
    }


def ingress(app: PythonApp, defaults: RouteDefaults) -> Manifest:
    """A networking.k8s.io/v1 Ingress for ``spec.expose``: the host and path prefix to the
    app's Service, with TLS from the named Secret (referenced, never read), in the class the
    app names, else the platform's, else the cluster's default IngressClass."""
    expose = app.spec.expose
    if expose is None:
        raise ValueError(f"PythonApp {app.name} has no spec.expose")
    spec: Manifest = {}
    entry_class = expose.entry_class or defaults.ingress_class
    if entry_class is not None:
        spec["ingressClassName"] = entry_class
    if expose.tls is not None:
        spec["tls"] = [{"hosts": [expose.host], "secretName": expose.tls.secret_name}]
    spec["rules"] = [
        {
            "host": expose.host,
            "http": {
                "paths": [
                    {
                        "path": expose.path,
                        "pathType": "Prefix",
                        "backend": {
                            "service": {"name": app.name, "port": {"number": SERVICE_PORT}}
                        },
                    }
                ]
            },
        }
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(app),
        "spec": spec,
    }


def route(app: PythonApp, routing: Routing) -> Manifest | None:
    """The app's route (``spec.expose``), or None: of the kind ``routing`` decides. (The
    NetworkPolicy needs no rule for it: a web app's admits every client to the app port
    already, the Gateway's or ingress controller's namespace included.)"""
    if app.spec.expose is None or app.spec.profile != "web":
        return None
    if routing.kind == HTTPROUTE:
        return http_route(app, routing.defaults)
    return ingress(app, routing.defaults)


def cron_job(
    app: PythonApp,
    secret_hashes: Mapping[str, str] | None = None,
    secret_versions: Mapping[str, str] | None = None,
    *,
    config_hashes: Mapping[str, str] | None = None,
    config_versions: Mapping[str, str] | None = None,
) -> Manifest | None:
    """A scheduled app's CronJob (``profile: cron``), or None: at each time of
    ``spec.cron.schedule`` a Job runs one pod with the pod template the Deployment would have
    (the same container, hardening, Secrets and resources; no port, probes or drain; restart
    policy Never, so each failed attempt keeps its exit code), bounded by the run settings.
    ``secret_hashes`` and ``secret_versions`` (and ``config_*`` for ConfigMaps) as for
    :func:`deployment`: a changed Secret or ConfigMap changes the job template's annotation,
    so the next run uses it."""
    cron = app.spec.cron
    if app.spec.profile != "cron" or cron is None:
        return None
    labels = common_labels(app)
    meta = _metadata(app)
    meta["annotations"] = {
        **_workload_annotations(app, secret_versions, config_versions),
        **CRON_EXEMPTIONS,
    }
    spec: Manifest = {"schedule": cron.schedule}
    if cron.time_zone is not None:
        spec["timeZone"] = cron.time_zone
    job_spec: Manifest = {"backoffLimit": cron.backoff_limit}
    if cron.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = cron.active_deadline_seconds
    job_spec["template"] = {
        "metadata": _pod_metadata(app, labels, secret_hashes, config_hashes),
        "spec": _pod_spec(app, _container(app, app.spec.image), spread=False),
    }
    spec.update(
        concurrencyPolicy=cron.concurrency_policy,
        startingDeadlineSeconds=cron.starting_deadline_seconds,
        successfulJobsHistoryLimit=cron.successful_jobs_history_limit,
        failedJobsHistoryLimit=cron.failed_jobs_history_limit,
        suspend=cron.suspend,
        # the Jobs carry the app's labels: the operator's watch finds them by app (their
        # controller is the CronJob, which tells them from migration Jobs)
        jobTemplate={"metadata": {"labels": labels}, "spec": job_spec},
    )
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec}


def render(
    app: PythonApp,
    secret_hashes: Mapping[str, str] | None = None,
    secret_versions: Mapping[str, str] | None = None,
    *,
    config_hashes: Mapping[str, str] | None = None,
    config_versions: Mapping[str, str] | None = None,
    image: str | None = None,
    migrated: str | None = None,
    deploy: bool = True,
    routing: Routing | None = None,
) -> list[Manifest]:
    """Every child object of ``app``, the workload first (the Deployment, or a scheduled app's
    CronJob), in a fixed order.

    ``secret_hashes`` and ``secret_versions`` come from the cluster (the operator reads the
    Secrets it may read), ``config_hashes`` and ``config_versions`` likewise for ConfigMaps;
    without them (``pythonapp render``) the pods carry no hash annotation and the Deployment
    no record of versions.

    With ``spec.migrate`` the migration Job comes last. ``image``, ``migrated`` and
    ``deploy`` are the migrations gate's decision (the reconcile's, from the Job's status:
    :mod:`.controller.migration`): the image the Deployment runs and the Job it passed, or no
    Deployment at all while a new app's first migration runs. The defaults (``pythonapp
    render``) show the app once its gate passed.

    ``routing`` decides the route of ``spec.expose`` (:mod:`.routing`): the operator's
    options and its HTTPRoute watch, or ``pythonapp render``'s options (default: no Gateway
    configured, so an Ingress in the cluster's default class)."""
    parse_image(app.spec.image)  # defence in depth: never render a refused image
    if image is None and migrated is None and app.spec.migrate is not None:
        migrated = migration_job_name(app)
    children = []
    scheduled = cron_job(
        app,
        secret_hashes,
        secret_versions,
        config_hashes=config_hashes,
        config_versions=config_versions,
    )
    if scheduled is not None:
        children.append(scheduled)  # a scheduled app's workload: no Deployment
    elif deploy:
        children.append(
            deployment(
                app,
                secret_hashes,
                secret_versions,
                config_hashes=config_hashes,
                config_versions=config_versions,
                image=image,
                migrated=migrated,
            )
        )
    children.append(service_account(app))
    if app.spec.profile == "web":
        children.append(service(app))
    if app.spec.wants_disruption_budget:
        children.append(pod_disruption_budget(app))
    children.append(network_policy(app))
    hpa = horizontal_pod_autoscaler(app)
    if hpa is not None:
        children.append(hpa)
    way_in = route(app, routing or Routing())
    if way_in is not None:
        children.append(way_in)
    job = migration_job(app)
    if job is not None:
        children.append(job)
    return children
