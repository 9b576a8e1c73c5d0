"""Every validation rule, accepting and refusing, through the same path the CLI uses."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.factories import DIGEST, make_doc

from pythonapp_operator.api import image, models
from pythonapp_operator.api.validation import validate_document


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    app, found = validate_document(doc)
    assert (app is None) == bool(found)
    return [(p.path, p.message) for p in found]


def test_minimal_app_is_valid_and_defaults_apply() -> None:
    app, found = validate_document(make_doc())
    assert found == []
    assert app is not None
    spec = app.spec
    assert spec.profile == "web"
    assert spec.replicas == 2
    assert spec.effective_port == 8000
    assert spec.termination_grace_period_seconds == 30
    assert spec.effective_prestop_seconds == 5
    assert spec.security_context.run_as_user == 10001
    assert spec.automount_service_account_token is False


def cpu_limit(cpu: str) -> dict[str, Any]:
    return {"resources": {"limits": {"memory": "1Gi", "cpu": cpu}}}


# (spec overrides, expected path, expected message or fragment)
SCALING = {"minReplicas": 2, "maxReplicas": 10}
POLICY = {"type": "Percent", "value": 100, "periodSeconds": 15}


def cron(schedule: str = "*/15 * * * *", **fields: Any) -> dict[str, Any]:
    """A scheduled app's overrides: profile cron with this schedule and cron fields."""
    return {"profile": "cron", "cron": {"schedule": schedule, **fields}}


#: schedules the API server's parser refuses (or that carry a time zone, which it refuses
#: in the schedule), each with the rule that says so
BAD_SCHEDULES = [
    ("minute 60", "60 * * * *", models.MSG_SCHEDULE),
    ("hour 24", "0 24 * * *", models.MSG_SCHEDULE),
    ("day 0", "0 0 0 * *", models.MSG_SCHEDULE),
    ("day 32", "0 0 32 * *", models.MSG_SCHEDULE),
    ("month 13", "0 0 * 13 *", models.MSG_SCHEDULE),
    ("weekday 7", "0 0 * * 7", models.MSG_SCHEDULE),
    ("four fields", "* * * *", models.MSG_SCHEDULE),
    ("six fields", "0 * * * * *", models.MSG_SCHEDULE),
    ("step 0", "*/0 * * * *", models.MSG_SCHEDULE),
    ("every", "@every 1h", models.MSG_SCHEDULE),
    ("unknown macro", "@often", models.MSG_SCHEDULE),
    ("TZ prefix", "TZ=UTC 0 * * * *", models.MSG_SCHEDULE),
    ("CRON_TZ prefix", "CRON_TZ=Europe/Berlin 0 * * * *", models.MSG_SCHEDULE),
    ("day name as month", "0 0 * MON *", models.MSG_SCHEDULE),
    ("month name as day", "0 0 * * JAN", models.MSG_SCHEDULE),
    ("leading space", " 0 * * * *", models.MSG_SCHEDULE),
    ("empty", "", models.MSG_SCHEDULE),
    ("reversed range", "5-1 * * * *", models.MSG_SCHEDULE_RANGE),
    ("reversed names", "0 0 * * FRI-MON", models.MSG_SCHEDULE_RANGE),
    ("reversed months with step", "0 0 * dec-1/2 *", models.MSG_SCHEDULE_RANGE),
]

REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("image missing", {"image": None}, "spec.image", "is required"),
    ("image tag only", {"image": "python:3.12"}, "spec.image", image.MSG_NO_DIGEST),
    ("image bare", {"image": "python"}, "spec.image", image.MSG_NO_DIGEST),
    ("image latest", {"image": f"python:latest@{DIGEST}"}, "spec.image", image.MSG_LATEST),
    ("image bad digest", {"image": "python@sha256:1234"}, "spec.image", image.MSG_BAD_DIGEST),
    ("image malformed", {"image": f"Python@{DIGEST}"}, "spec.image", image.MSG_MALFORMED),
    ("unknown field", {"imagePullPolicy": "Never"}, "spec.imagePullPolicy", "unknown fields"),
    ("profile", {"profile": "batch"}, "spec.profile", "'web', 'worker' or 'cron'"),
    ("replicas negative", {"replicas": -1}, "spec.replicas", "greater than or equal to 0"),
    ("port zero", {"port": 0}, "spec.port", "greater than or equal to 1"),
    ("port too big", {"port": 65536}, "spec.port", "less than or equal to 65535"),
    ("port on worker", {"profile": "worker", "port": 8080}, "spec.port", models.MSG_PORT_WORKER),
    (
        "http probe on worker",
        {"profile": "worker", "probes": {"liveness": {"path": "/health"}}},
        "spec.probes.liveness.path",
        models.MSG_WORKER_HTTP_PROBE,
    ),
    (
        "probe path and command",
        {"probes": {"readiness": {"path": "/r", "command": ["true"]}}},
        "spec.probes.readiness",
        models.MSG_PROBE_BOTH,
    ),
    (
        "probe timeout over period",
        {"probes": {"liveness": {"periodSeconds": 5, "timeoutSeconds": 6}}},
        "spec.probes.liveness.timeoutSeconds",
        models.MSG_PROBE_TIMEOUT,
    ),
    (
        "probe path relative",
        {"probes": {"liveness": {"path": "health"}}},
        "spec.probes.liveness.path",
        "starting with '/'",
    ),
    (
        "memory limit missing",
        {"resources": {"limits": {"cpu": "1"}}},
        "spec.resources.limits.memory",
        "is required",
    ),
    ("resources missing", {"resources": None}, "spec.resources", "is required"),
    (
        "memory limit below request",
        {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}},
        "spec.resources.limits.memory",
        "below requests.memory",
    ),
    (
        "cpu limit below request",
        {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m", "memory": "1Gi"}}},
        "spec.resources.limits.cpu",
        "below requests.cpu",
    ),
    (
        "ephemeral limit below request",
        {
            "resources": {
                "requests": {"ephemeral-storage": "2Gi"},
                "limits": {"memory": "1Gi", "ephemeral-storage": "1Gi"},
            }
        },
        "spec.resources.limits.ephemeral-storage",
        "below requests.ephemeral-storage",
    ),
    (
        "quantity garbage",
        {"resources": {"limits": {"memory": "lots"}}},
        "spec.resources.limits.memory",
        models.MSG_QUANTITY,
    ),
    (
        "quantity negative",
        {"resources": {"limits": {"memory": "-1Gi"}}},
        "spec.resources.limits.memory",
        "negative",
    ),
    ("secret name", {"secrets": [{"name": "DB_Secret"}]}, "spec.secrets[0].name", "DNS-1123"),
    (
        "mount relative",
        {"secrets": [{"name": "db", "mountPath": "run/db"}]},
        "spec.secrets[0].mountPath",
        "absolute",
    ),
    (
        "mount dotdot",
        {"secrets": [{"name": "db", "mountPath": "/run/../etc"}]},
        "spec.secrets[0].mountPath",
        "normalised",
    ),
    (
        "mount root",
        {"secrets": [{"name": "db", "mountPath": "/"}]},
        "spec.secrets[0].mountPath",
        "absolute",
    ),
    (
        "mount trailing slash",
        {"secrets": [{"name": "db", "mountPath": "/run/db/"}]},
        "spec.secrets[0].mountPath",
        "trailing",
    ),
    (
        "mount over tmp",
        {"secrets": [{"name": "db", "mountPath": "/tmp/db"}]},
        "spec.secrets[0].mountPath",
        models.MSG_TMP_SHADOW,
    ),
    (
        "mount duplicate",
        {"secrets": [{"name": "a", "mountPath": "/s"}, {"name": "b", "mountPath": "/s"}]},
        "spec.secrets[1].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "mount shadows another",
        {"secrets": [{"name": "a", "mountPath": "/run/secrets"}, {"name": "b"}]},
        "spec.secrets[1].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "mount default shadowed",
        {"secrets": [{"name": "b"}, {"name": "a", "mountPath": "/run/secrets/b/x"}]},
        "spec.secrets[1].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "env name",
        {"env": [{"name": "1BAD", "value": "x"}]},
        "spec.env[0].name",
        "environment variable name",
    ),
    (
        "env duplicated by secret env",
        {
            "env": [{"name": "TOKEN", "value": "x"}],
            "secrets": [{"name": "api", "env": [{"name": "TOKEN", "key": "t"}]}],
        },
        "spec.secrets[0].env[0].name",
        models.MSG_ENV_DUP,
    ),
    (
        "env duplicated across secrets",
        {
            "secrets": [
                {"name": "a", "env": [{"name": "TOKEN", "key": "t"}]},
                {"name": "b", "env": [{"name": "TOKEN", "key": "t"}]},
            ]
        },
        "spec.secrets[1].env[0].name",
        models.MSG_ENV_DUP,
    ),
    (
        "secret key",
        {"secrets": [{"name": "a", "env": [{"name": "T", "key": "a/b"}]}]},
        "spec.secrets[0].env[0].key",
        "Secret key",
    ),
    (
        "grace negative",
        {"terminationGracePeriodSeconds": -1},
        "spec.terminationGracePeriodSeconds",
        "greater than or equal to 0",
    ),
    (
        "grace not above default web drain",
        {"terminationGracePeriodSeconds": 5},
        "spec.terminationGracePeriodSeconds",
        models.MSG_GRACE,
    ),
    (
        "grace not above explicit drain",
        {"terminationGracePeriodSeconds": 20, "preStopSleepSeconds": 20},
        "spec.terminationGracePeriodSeconds",
        models.MSG_GRACE,
    ),
    (
        "root user",
        {"securityContext": {"runAsUser": 0}},
        "spec.securityContext.runAsUser",
        "greater than or equal to 1",
    ),
    (
        "root group",
        {"securityContext": {"runAsGroup": 0}},
        "spec.securityContext.runAsGroup",
        "greater than or equal to 1",
    ),
    (
        "user by name",
        {"securityContext": {"runAsUser": "app"}},
        "spec.securityContext.runAsUser",
        "integer",
    ),
    ("command not list", {"command": "python app.py"}, "spec.command", "list"),
    ("env value not string", {"env": [{"name": "A", "value": 1}]}, "spec.env[0].value", "string"),
    (
        "env name twice",
        {"env": [{"name": "A"}, {"name": "A"}]},
        "spec.env[1].name",
        models.MSG_DUPLICATE_NAME,
    ),
    (
        "secret twice at two paths",
        {"secrets": [{"name": "db", "mountPath": "/a"}, {"name": "db", "mountPath": "/b"}]},
        "spec.secrets[1].name",
        models.MSG_DUPLICATE_NAME,
    ),
    (
        "pull secret name",
        {"imagePullSecrets": [{"name": "Reg_Cred"}]},
        "spec.imagePullSecrets[0].name",
        "DNS-1123",
    ),
    (
        "pull secret as a plain string",
        {"imagePullSecrets": ["regcred"]},
        "spec.imagePullSecrets[0]",
        "dictionary",
    ),
    (
        "pull secret twice",
        {"imagePullSecrets": [{"name": "regcred"}, {"name": "regcred"}]},
        "spec.imagePullSecrets[1].name",
        models.MSG_DUPLICATE_NAME,
    ),
    (
        "pull secret unknown field",
        {"imagePullSecrets": [{"name": "regcred", "namespace": "other"}]},
        "spec.imagePullSecrets[0].namespace",
        "unknown field",
    ),
    (
        "too many pull secrets",
        {"imagePullSecrets": [{"name": f"r{i}"} for i in range(models.MAX_IMAGE_PULL_SECRETS + 1)]},
        "spec.imagePullSecrets",
        "at most",
    ),
    ("config name", {"config": [{"name": "App_Config"}]}, "spec.config[0].name", "DNS-1123"),
    (
        "config mount relative",
        {"config": [{"name": "app", "mountPath": "etc/app"}]},
        "spec.config[0].mountPath",
        "absolute",
    ),
    (
        "config mount over tmp",
        {"config": [{"name": "app", "mountPath": "/tmp"}]},
        "spec.config[0].mountPath",
        models.MSG_TMP_SHADOW,
    ),
    (
        "config mount trailing slash",
        {"config": [{"name": "app", "mountPath": "/etc/app/"}]},
        "spec.config[0].mountPath",
        "trailing",
    ),
    (
        "config mounts duplicate",
        {"config": [{"name": "a", "mountPath": "/c"}, {"name": "b", "mountPath": "/c"}]},
        "spec.config[1].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "config mount default shadowed",
        {"config": [{"name": "b"}, {"name": "a", "mountPath": "/etc/config"}]},
        "spec.config[1].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "config mount on a secret's",
        {"secrets": [{"name": "db"}], "config": [{"name": "app", "mountPath": "/run/secrets/db"}]},
        "spec.config[0].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "config mount holds a secret's",
        {
            "secrets": [{"name": "db", "mountPath": "/etc/app/db"}],
            "config": [{"name": "x", "mountPath": "/etc/app"}],
        },
        "spec.config[0].mountPath",
        models.MSG_MOUNTS,
    ),
    (
        "config twice",
        {"config": [{"name": "app", "mountPath": "/a"}, {"name": "app", "mountPath": "/b"}]},
        "spec.config[1].name",
        models.MSG_DUPLICATE_NAME,
    ),
    (
        "config key",
        {"config": [{"name": "app", "env": [{"name": "A", "key": "a/b"}]}]},
        "spec.config[0].env[0].key",
        "ConfigMap key",
    ),
    (
        "config env name",
        {"config": [{"name": "app", "env": [{"name": "1A", "key": "a"}]}]},
        "spec.config[0].env[0].name",
        "environment variable name",
    ),
    (
        "env duplicated by config env",
        {
            "env": [{"name": "LEVEL", "value": "x"}],
            "config": [{"name": "app", "env": [{"name": "LEVEL", "key": "level"}]}],
        },
        "spec.config[0].env[0].name",
        models.MSG_ENV_DUP,
    ),
    (
        "secret env duplicated by config env",
        {
            "secrets": [{"name": "db", "env": [{"name": "DB", "key": "url"}]}],
            "config": [{"name": "app", "env": [{"name": "DB", "key": "db"}]}],
        },
        "spec.config[0].env[0].name",
        models.MSG_ENV_DUP,
    ),
    (
        "env duplicated across config",
        {
            "config": [
                {"name": "a", "env": [{"name": "LEVEL", "key": "l"}]},
                {"name": "b", "env": [{"name": "LEVEL", "key": "l"}]},
            ]
        },
        "spec.config[1].env[0].name",
        models.MSG_ENV_DUP,
    ),
    (
        "config rotation",
        {"config": [{"name": "app", "rotation": "always"}]},
        "spec.config[0].rotation",
        "restart",
    ),
    (
        "config subPath",
        {"config": [{"name": "app", "subPath": "settings.toml"}]},
        "spec.config[0].subPath",
        "unknown field",
    ),
    (
        "too many config env",
        {
            "config": [
                {
                    "name": "app",
                    "env": [
                        {"name": f"V{i}", "key": "k"} for i in range(models.MAX_CONFIG_ENV + 1)
                    ],
                }
            ]
        },
        "spec.config[0].env",
        "at most",
    ),
    (
        "memory in thousandths of a byte",
        {"resources": {"limits": {"memory": "512m"}}},
        "spec.resources.limits.memory",
        models.MSG_WHOLE_BYTES,
    ),
    (
        "probe path with a no-break space",
        {"probes": {"liveness": {"path": "/a\u00a0b"}}},
        "spec.probes.liveness.path",
        "printable ASCII",
    ),
    (
        "probe path with a vertical tab",
        {"probes": {"liveness": {"path": "/a\x0bb"}}},
        "spec.probes.liveness.path",
        "printable ASCII",
    ),
    ("cpu as a Python number", cpu_limit("1_000"), "spec.resources.limits.cpu", "quantity"),
    ("cpu suffix only", cpu_limit("m"), "spec.resources.limits.cpu", "quantity"),
    ("cpu exponent of 3 digits", cpu_limit("1e100"), "spec.resources.limits.cpu", "quantity"),
    (
        "memory of 1Ti",
        {"resources": {"limits": {"memory": "1Ti"}}},
        "spec.resources.limits.memory",
        models.MSG_BYTES_MAX,
    ),
    (
        "memory of 0.1Ki (102.4 bytes)",
        {"resources": {"limits": {"memory": "0.1Ki"}}},
        "spec.resources.limits.memory",
        models.MSG_WHOLE_BYTES,
    ),
    ("tmp size of half a byte", {"tmpSizeLimit": "0.5"}, "spec.tmpSizeLimit", "whole number"),
    ("tmp size as fraction", {"tmpSizeLimit": 0.5}, "spec.tmpSizeLimit", "whole number"),
    ("over the size budget", {"args": ["x" * 4096] * 32 + ["z"]}, "spec", models.MSG_TEXT_BUDGET),
    # values of the wrong JSON type are refused, never converted (the API server refuses them)
    ("replicas as string", {"replicas": "2"}, "spec.replicas", "valid integer"),
    ("replicas as boolean", {"replicas": True}, "spec.replicas", "valid integer"),
    ("replicas fractional", {"replicas": 2.5}, "spec.replicas", "valid integer"),
    ("port as string", {"port": "8080"}, "spec.port", "valid integer"),
    (
        "token as string",
        {"automountServiceAccountToken": "true"},
        "spec.automountServiceAccountToken",
        "valid boolean",
    ),
    (
        "token as number",
        {"automountServiceAccountToken": 1},
        "spec.automountServiceAccountToken",
        "valid boolean",
    ),
    (
        "grace as string",
        {"terminationGracePeriodSeconds": "30"},
        "spec.terminationGracePeriodSeconds",
        "valid integer",
    ),
    (
        "autoscaling min above max",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
        "spec.autoscaling.minReplicas",
        models.MSG_MIN_ABOVE_MAX,
    ),
    (
        "autoscaling min zero",
        {"autoscaling": {"minReplicas": 0, "maxReplicas": 3}},
        "spec.autoscaling.minReplicas",
        "greater than or equal to 1",
    ),
    (
        "autoscaling max missing",
        {"autoscaling": {"minReplicas": 2}},
        "spec.autoscaling.maxReplicas",
        "is required",
    ),
    (
        "autoscaling cpu target zero",
        {"autoscaling": {**SCALING, "targetCPUUtilizationPercentage": 0}},
        "spec.autoscaling.targetCPUUtilizationPercentage",
        "greater than or equal to 1",
    ),
    (
        "autoscaling unknown field",
        {"autoscaling": {**SCALING, "targetCPU": 50}},
        "spec.autoscaling.targetCPU",
        "unknown fields",
    ),
    (
        "autoscaling policy type",
        {
            "autoscaling": {
                **SCALING,
                "behavior": {"scaleUp": {"policies": [POLICY | {"type": "Nodes"}]}},
            }
        },
        "spec.autoscaling.behavior.scaleUp.policies[0].type",
        "'Pods' or 'Percent'",
    ),
    (
        "autoscaling empty policies",
        {"autoscaling": {**SCALING, "behavior": {"scaleDown": {"policies": []}}}},
        "spec.autoscaling.behavior.scaleDown.policies",
        "at least 1 item",
    ),
    (
        "autoscaling policy period",
        {
            "autoscaling": {
                **SCALING,
                "behavior": {"scaleUp": {"policies": [POLICY | {"periodSeconds": 1801}]}},
            }
        },
        "spec.autoscaling.behavior.scaleUp.policies[0].periodSeconds",
        "less than or equal to 1800",
    ),
    (
        "autoscaling select policy",
        {"autoscaling": {**SCALING, "behavior": {"scaleDown": {"selectPolicy": "Random"}}}},
        "spec.autoscaling.behavior.scaleDown.selectPolicy",
        "'Max', 'Min' or 'Disabled'",
    ),
    (
        "disruption zero",
        {"disruption": {"maxUnavailable": 0}},
        "spec.disruption.maxUnavailable",
        "greater than or equal to 1",
    ),
    (
        "disruption too many",
        {"disruption": {"maxUnavailable": 1001}},
        "spec.disruption.maxUnavailable",
        "less than or equal to 1000",
    ),
    (
        "disruption zero percent",
        {"disruption": {"maxUnavailable": "0%"}},
        "spec.disruption.maxUnavailable",
        "should match",
    ),
    (
        "disruption above 100%",
        {"disruption": {"maxUnavailable": "150%"}},
        "spec.disruption.maxUnavailable",
        "should match",
    ),
    (
        "disruption number in a string",
        {"disruption": {"maxUnavailable": "1"}},
        "spec.disruption.maxUnavailable",
        "should match",
    ),
    (
        "disruption off with a budget",
        {"disruption": {"enabled": False, "maxUnavailable": 1}},
        "spec.disruption.maxUnavailable",
        models.MSG_DISRUPTION_OFF,
    ),
    ("migrate without command", {"migrate": {"args": ["x"]}}, "spec.migrate.command", "required"),
    ("migrate empty command", {"migrate": {"command": []}}, "spec.migrate.command", "at least 1"),
    (
        "migrate timeout zero",
        {"migrate": {"command": ["m"], "timeoutSeconds": 0}},
        "spec.migrate.timeoutSeconds",
        "greater than or equal to 1",
    ),
    (
        "migrate backoff negative",
        {"migrate": {"command": ["m"], "backoffLimit": -1}},
        "spec.migrate.backoffLimit",
        "greater than or equal to 0",
    ),
    (
        "migrate backoff too high",
        {"migrate": {"command": ["m"], "backoffLimit": 11}},
        "spec.migrate.backoffLimit",
        "less than or equal to 10",
    ),
    (
        "migrate unknown field",
        {"migrate": {"command": ["m"], "image": "x"}},
        "spec.migrate.image",
        "unknown fields",
    ),
    # spec.expose: a way in for web apps
    ("expose without host", {"expose": {"path": "/"}}, "spec.expose.host", "required"),
    (
        "expose on a worker",
        {"profile": "worker", "expose": {"host": "a.example.com"}},
        "spec.expose",
        models.MSG_EXPOSE_WEB_ONLY,
    ),
    (
        "expose on a scheduled app",
        {**cron(), "expose": {"host": "a.example.com"}},
        "spec.expose",
        models.MSG_EXPOSE_WEB_ONLY,
    ),
    (
        "expose host uppercase",
        {"expose": {"host": "Shop.example.com"}},
        "spec.expose.host",
        "must be a lowercase DNS name",
    ),
    (
        "expose host wildcard",
        {"expose": {"host": "*.example.com"}},
        "spec.expose.host",
        "must be a lowercase DNS name",
    ),
    (
        "expose host with port",
        {"expose": {"host": "shop.example.com:443"}},
        "spec.expose.host",
        "must be a lowercase DNS name",
    ),
    (
        "expose host an IP address",
        {"expose": {"host": "10.0.0.1"}},
        "spec.expose.host",
        models.MSG_HOST_IP,
    ),
    (
        "expose host too long",
        {"expose": {"host": "a" * 254}},
        "spec.expose.host",
        "at most 253",
    ),
    (
        "expose path relative",
        {"expose": {"host": "a.example.com", "path": "api"}},
        "spec.expose.path",
        "must be / or an absolute, normalised path",
    ),
    (
        "expose path trailing slash",
        {"expose": {"host": "a.example.com", "path": "/api/"}},
        "spec.expose.path",
        "must be / or an absolute, normalised path",
    ),
    (
        "expose path dot segment",
        {"expose": {"host": "a.example.com", "path": "/a/../b"}},
        "spec.expose.path",
        "must be / or an absolute, normalised path",
    ),
    (
        "expose path encoded slash",
        {"expose": {"host": "a.example.com", "path": "/a%2Fb"}},
        "spec.expose.path",
        "may hold only letters, digits",
    ),
    (
        "expose path query",
        {"expose": {"host": "a.example.com", "path": "/a?b=1"}},
        "spec.expose.path",
        "may hold only letters, digits",
    ),
    (
        "expose tls secret name",
        {"expose": {"host": "a.example.com", "tls": {"secretName": "Shop_TLS"}}},
        "spec.expose.tls.secretName",
        "must be a Secret name",
    ),
    (
        "expose tls without secret",
        {"expose": {"host": "a.example.com", "tls": {}}},
        "spec.expose.tls.secretName",
        "required",
    ),
    (
        "expose class not a name",
        {"expose": {"host": "a.example.com", "class": "Public Gateway"}},
        "spec.expose.class",
        "must be a DNS-1123 subdomain",
    ),
    (
        "expose unknown field",
        {"expose": {"host": "a.example.com", "port": 80}},
        "spec.expose.port",
        "unknown fields",
    ),
    ("cron without cron", {"profile": "cron"}, "spec.cron", models.MSG_CRON_REQUIRED),
    ("cron on web", {"cron": {"schedule": "@daily"}}, "spec.cron", models.MSG_CRON_PROFILE),
    (
        "cron on worker",
        {"profile": "worker", "cron": {"schedule": "@daily"}},
        "spec.cron",
        models.MSG_CRON_PROFILE,
    ),
    ("cron without schedule", {"profile": "cron", "cron": {}}, "spec.cron.schedule", "required"),
    *(
        (f"cron refuses {field}", {**cron(), field: value}, f"spec.{field}", message)
        for field, value in (
            ("replicas", 2),
            ("port", 8000),
            ("probes", {"liveness": {"command": ["true"]}}),
            ("autoscaling", SCALING),
            ("disruption", {"enabled": False}),
            ("preStopSleepSeconds", 0),
            ("migrate", {"command": ["m"]}),
        )
        for message in (models.msg_cron_refused(field),)
    ),
    *(
        (f"schedule {name}", cron(schedule), "spec.cron.schedule", message)
        for name, schedule, message in BAD_SCHEDULES
    ),
    (
        "schedule too long",
        cron(",".join(["1"] * 64) + " * * * *"),
        "spec.cron.schedule",
        "at most 128",
    ),
    ("time zone Local", cron(timeZone="Local"), "spec.cron.timeZone", models.MSG_TIME_ZONE_LOCAL),
    ("time zone LOCAL", cron(timeZone="LOCAL"), "spec.cron.timeZone", models.MSG_TIME_ZONE_LOCAL),
    ("time zone empty", cron(timeZone=""), "spec.cron.timeZone", models.MSG_TIME_ZONE),
    ("time zone climbs", cron(timeZone="../etc/x"), "spec.cron.timeZone", models.MSG_TIME_ZONE),
    (
        "time zone long part",
        cron(timeZone="Europe/Berlin_Brandenburg"),
        "spec.cron.timeZone",
        models.MSG_TIME_ZONE,
    ),
    ("time zone space", cron(timeZone="Europe/ X"), "spec.cron.timeZone", models.MSG_TIME_ZONE),
    (
        "concurrency unknown",
        cron(concurrencyPolicy="Sometimes"),
        "spec.cron.concurrencyPolicy",
        "'Allow', 'Forbid' or 'Replace'",
    ),
    (
        "starting deadline below 10",
        cron(startingDeadlineSeconds=5),
        "spec.cron.startingDeadlineSeconds",
        "greater than or equal to 10",
    ),
    (
        "successful history negative",
        cron(successfulJobsHistoryLimit=-1),
        "spec.cron.successfulJobsHistoryLimit",
        "greater than or equal to 0",
    ),
    (
        "failed history too long",
        cron(failedJobsHistoryLimit=101),
        "spec.cron.failedJobsHistoryLimit",
        "less than or equal to 100",
    ),
    (
        "run deadline zero",
        cron(activeDeadlineSeconds=0),
        "spec.cron.activeDeadlineSeconds",
        "greater than or equal to 1",
    ),
    (
        "run backoff too high",
        cron(backoffLimit=11),
        "spec.cron.backoffLimit",
        "less than or equal to 10",
    ),
    ("suspend as string", cron(suspend="true"), "spec.cron.suspend", "valid boolean"),
    ("cron unknown field", cron(image="x"), "spec.cron.image", "unknown fields"),
]


@pytest.mark.parametrize(
    ("overrides", "path", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_with_field_and_message(overrides: dict[str, Any], path: str, message: str) -> None:
    found = problems(make_doc(**overrides))
    assert any(p == path and message in m for p, m in found), found


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("worker without port", {"profile": "worker"}),
    ("worker exec probes", {"profile": "worker", "probes": {"liveness": {"command": ["true"]}}}),
    ("web exec probe", {"probes": {"liveness": {"command": ["python", "-m", "hc"]}}}),
    ("replicas zero", {"replicas": 0}),
    ("port bounds", {"port": 65535}),
    (
        "memory limit equal to request",
        {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}},
    ),
    (
        "limit in other units",
        {"resources": {"requests": {"memory": "1000Mi"}, "limits": {"memory": "1Gi"}}},
    ),
    ("integer cpu", {"resources": {"requests": {"cpu": 1}, "limits": {"cpu": 2, "memory": "1Gi"}}}),
    ("secret dotted name", {"secrets": [{"name": "db.credentials"}]}),
    (
        "sibling mounts",
        {"secrets": [{"name": "a", "mountPath": "/s/a"}, {"name": "b", "mountPath": "/s/ab"}]},
    ),
    ("dot file mount", {"secrets": [{"name": "a", "mountPath": "/etc/.app"}]}),
    (
        "distinct env",
        {"env": [{"name": "A"}], "secrets": [{"name": "s", "env": [{"name": "B", "key": "b"}]}]},
    ),
    ("pull secrets", {"imagePullSecrets": [{"name": "regcred"}, {"name": "mirror.creds"}]}),
    ("pull secret also mounted", {"imagePullSecrets": [{"name": "s"}], "secrets": [{"name": "s"}]}),
    ("config default mount", {"config": [{"name": "app.settings"}]}),
    (
        "config full",
        {
            "config": [
                {
                    "name": "app",
                    "mountPath": "/etc/app",
                    "env": [{"name": "LOG_LEVEL", "key": "log-level"}],
                    "rotation": "none",
                }
            ]
        },
    ),
    (
        "config and secret of one name",
        {"secrets": [{"name": "app"}], "config": [{"name": "app"}]},
    ),
    (
        "config beside secrets",
        {
            "env": [{"name": "A"}],
            "secrets": [
                {"name": "s", "mountPath": "/etc/app-secrets", "env": [{"name": "B", "key": "b"}]}
            ],
            "config": [{"name": "c", "mountPath": "/etc/app", "env": [{"name": "C", "key": "b"}]}],
        },
    ),
    ("grace zero without drain", {"terminationGracePeriodSeconds": 0, "preStopSleepSeconds": 0}),
    ("grace zero for worker", {"profile": "worker", "terminationGracePeriodSeconds": 0}),
    ("grace above drain", {"terminationGracePeriodSeconds": 6}),
    ("low uid", {"securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}}),
    ("timeout equal period", {"probes": {"liveness": {"periodSeconds": 5, "timeoutSeconds": 5}}}),
    ("tmp size as whole float", {"tmpSizeLimit": 67108864.0}),
    # whole numbers of bytes, however written (a float would call 29.0Mi a fraction)
    ("bytes with a decimal point", {"tmpSizeLimit": "29.0Mi"}),
    ("bytes as thousandths", {"tmpSizeLimit": "2000m"}),
    ("bytes as a fraction of Ki", {"resources": {"limits": {"memory": "0.5Ki"}}}),
    # a number without a fractional part is an integer, for the API server too
    ("whole-number float", {"replicas": 2.0, "probes": {"startup": {"periodSeconds": 5.0}}}),
    ("autoscaling minimal", {"autoscaling": {"minReplicas": 1, "maxReplicas": 1}}),
    ("migrate minimal", {"migrate": {"command": ["python", "manage.py", "migrate"]}}),
    ("expose minimal", {"expose": {"host": "shop.example.com"}}),
    ("expose one label host", {"expose": {"host": "intranet"}}),
    (
        "expose full",
        {
            "expose": {
                "host": "shop.example.com",
                "path": "/api/v1.2/~user",
                "tls": {"secretName": "shop.example.com-tls"},
                "class": "public",
            }
        },
    ),
    ("expose path root", {"expose": {"host": "a.example.com", "path": "/"}}),
    ("expose host with digits", {"expose": {"host": "1password.example.com"}}),
    (
        "migrate full",
        {
            "migrate": {
                "command": ["alembic"],
                "args": ["upgrade", "head"],
                "timeoutSeconds": 86400,
                "backoffLimit": 0,
            }
        },
    ),
    ("autoscaling with replicas", {"replicas": 3, "autoscaling": SCALING}),
    (
        "autoscaling full",
        {
            "autoscaling": {
                **SCALING,
                "targetCPUUtilizationPercentage": 60,
                "targetMemoryUtilizationPercentage": 75,
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "selectPolicy": "Max",
                        "policies": [POLICY, {"type": "Pods", "value": 4, "periodSeconds": 15}],
                    },
                    "scaleDown": {"selectPolicy": "Disabled"},
                },
            }
        },
    ),
    ("disruption percent", {"disruption": {"maxUnavailable": "25%"}}),
    ("disruption 100%", {"disruption": {"maxUnavailable": "100%"}}),
    (
        "disruption at one pod",
        {"replicas": 1, "disruption": {"enabled": True, "maxUnavailable": 1}},
    ),
    ("disruption off", {"disruption": {"enabled": False}}),
    ("cron minimal", cron()),
    (
        "cron full",
        cron(
            "0 3 * * MON-FRI",
            timeZone="Europe/Berlin",
            concurrencyPolicy="Replace",
            startingDeadlineSeconds=10,
            successfulJobsHistoryLimit=0,
            failedJobsHistoryLimit=100,
            suspend=True,
            activeDeadlineSeconds=3600,
            backoffLimit=0,
        ),
    ),
    *(
        (f"schedule {schedule}", cron(schedule))
        for schedule in (
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "* * * * *",
            "0,30 8-18/2 1-15 JAN-jun ?",
            "00 00 01 01 00",
            "59 23 31 12 6",
            "5/10 */3 ? dec sun-Sat",
            "1-1 0 1 1 0",
            "0  3 * * *",
        )
    ),
    ("time zone UTC", cron(timeZone="UTC")),
    ("time zone three parts", cron(timeZone="America/Argentina/Buenos_Aires")),
    ("time zone offset", cron(timeZone="Etc/GMT+5")),
    (
        "cron with env, secrets and grace 0",
        {
            **cron(),
            "env": [{"name": "A", "value": "1"}],
            "secrets": [{"name": "db", "env": [{"name": "DB", "key": "url"}]}],
            "terminationGracePeriodSeconds": 0,
        },
    ),
]


@pytest.mark.parametrize("overrides", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted(overrides: dict[str, Any]) -> None:
    assert problems(make_doc(**overrides)) == []


def test_null_fields_are_absent_as_the_api_server_prunes_them() -> None:
    doc = make_doc(env=[{"name": "A", "value": None}], probes={"liveness": None})
    for field in ("replicas", "profile", "port", "secrets", "securityContext", "command"):
        doc["spec"][field] = None
    doc["spec"]["resources"]["requests"] = None
    app, found = validate_document(doc)
    assert found == []
    assert app is not None
    assert app.spec.replicas == 2 and app.spec.profile == "web" and app.spec.env[0].value == ""
    doc["spec"]["image"] = None
    assert problems(doc) == [("spec.image", "is required")]


@pytest.mark.parametrize("name", ["Shop", "1shop", "shop_app", "shop.app", "-shop", "s" * 64])
def test_object_name_must_be_a_dns1035_label(name: str) -> None:
    doc = make_doc()
    doc["metadata"]["name"] = name
    found = problems(doc)
    assert found and found[0][0] == "metadata.name"


def test_wrong_api_version_is_named() -> None:
    doc = make_doc()
    doc["apiVersion"] = "pythonapp.dev/v1"
    assert problems(doc) == [
        ("apiVersion", "must be pythonapp.dev/v1alpha1 (found 'pythonapp.dev/v1')")
    ]


def test_several_problems_are_all_reported() -> None:
    found = problems(
        make_doc(
            image="python:3",
            replicas=-2,
            secrets=[{"name": "a", "mountPath": "/tmp"}],
        )
    )
    paths = {p for p, _ in found}
    assert {"spec.image", "spec.replicas", "spec.secrets[0].mountPath"} <= paths


def test_cross_field_problems_each_get_their_own_path() -> None:
    found = problems(
        make_doc(
            profile="worker",
            port=80,
            terminationGracePeriodSeconds=3,
            preStopSleepSeconds=3,
            probes={"readiness": {"path": "/r"}},
        )
    )
    assert {p for p, _ in found} == {
        "spec.port",
        "spec.probes.readiness.path",
        "spec.terminationGracePeriodSeconds",
    }


def test_cron_defaults() -> None:
    app, found = validate_document(make_doc(**cron()))
    assert found == [] and app is not None
    spec = app.spec
    assert spec.cron is not None
    assert spec.cron.concurrency_policy == "Forbid"
    assert spec.cron.starting_deadline_seconds == 3600
    assert spec.cron.successful_jobs_history_limit == 3
    assert spec.cron.failed_jobs_history_limit == 1
    assert spec.cron.suspend is False
    assert spec.cron.active_deadline_seconds is None
    assert spec.cron.backoff_limit == 1
    assert spec.cron.time_zone is None
    assert spec.effective_port is None
    assert spec.effective_prestop_seconds == 0
    assert not spec.wants_disruption_budget


def test_migrate_defaults() -> None:
    app, found = validate_document(make_doc(migrate={"command": ["m"]}))
    assert found == [] and app is not None and app.spec.migrate is not None
    assert app.spec.migrate.timeout_seconds == models.DEFAULT_MIGRATE_TIMEOUT_SECONDS == 600
    assert app.spec.migrate.backoff_limit == models.DEFAULT_MIGRATE_BACKOFF_LIMIT == 1
    assert app.spec.migrate.args is None
