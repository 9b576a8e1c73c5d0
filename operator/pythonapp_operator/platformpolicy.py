"""What the platform policy (:mod:`.api.policy`) says about one PythonApp: its violations, and
the app with the policy's defaults filled in.

Pure, no I/O, and the one place the policy's meaning is written in Python: ``pythonapp validate
--policy`` and ``render --policy`` call it offline, the operator calls it on every plan. The
admission policy (:mod:`.api.policyadmission`) says the same rules in CEL with the same messages
(its tests compare them), so a refusal reads alike at ``kubectl apply``, in CI and on the app's
status. Each message starts with the policy's name and the rule (``allowedRegistries``,
``maxLimits``, ``expose.allowedNamespaces``), so a reader knows which line of which object to ask
the platform team about.

Defaults are filled where the app says nothing, never over what it says:

- resources: ``defaultRequests`` / ``defaultLimits`` for each resource the app leaves unset; a
  default request never above the app's own limit (the renderer's rule), and a default (the
  policy's or the built-in one) never above ``maxLimits``;
- imagePullSecrets: the policy's, after the app's own (one each: a name the app gives already
  is not repeated). The operator's Secret check looks at the app's own list only: a platform
  default is the platform's to provide in every namespace, and the kubelet pulls without a
  missing one;
- routes (:func:`route_defaults`): the operator's options (or ``render``'s) win where set; the
  policy fills what they leave unset. An option is the installation's explicit, local choice,
  and an existing installation keeps its behaviour when a policy object appears.
"""

from __future__ import annotations

from collections.abc import Mapping

from .api.models import RESOURCE_NAMES, ImagePullSecret, PythonApp, Resources, quantity_value
from .api.policy import POLICY_NAME, PythonAppPolicySpec
from .api.validation import Problem
from .render import DEFAULT_LIMITS, DEFAULT_REQUESTS
from .routing import Gateway, RouteDefaults

#: the admission policy's name, which every message starts with
RULES_NAME = "pythonapp-platform-policy"


def msg_registry(prefixes: list[str]) -> str:
    """spec.image from a registry the policy does not list."""
    return (
        f"{RULES_NAME}: allowedRegistries: the image must come from one of the registries the "
        f"platform allows ({', '.join(prefixes)}) in PythonAppPolicy {POLICY_NAME}: push it "
        "there, or ask the platform team to allow its registry"
    )


def msg_max(field: str, value: str, maximum: str) -> str:
    """A request or limit above ``maxLimits``; ``field`` is e.g. ``limits.cpu``."""
    return (
        f"{RULES_NAME}: maxLimits: {field} {value} is above the maximum {maximum} in "
        f"PythonAppPolicy {POLICY_NAME}: ask for less, or ask the platform team for more"
    )


def msg_expose(namespace: str, allowed: list[str]) -> str:
    """spec.expose in a namespace the policy does not allow to expose apps."""
    return (
        f"{RULES_NAME}: expose.allowedNamespaces: apps in namespace {namespace} may not be "
        f"exposed (allowed: {', '.join(allowed)}) by PythonAppPolicy {POLICY_NAME}: remove "
        "spec.expose, or ask the platform team to allow the namespace"
    )


def violations(app: PythonApp, policy: PythonAppPolicySpec) -> list[Problem]:
    """Every rule of ``policy`` ``app`` breaks, one problem each, in field order."""
    found: list[tuple[str, str]] = []
    spec = app.spec
    prefixes = policy.allowed_registries
    if prefixes is not None and not any(spec.image.startswith(p) for p in prefixes):
        found.append(("spec.image", msg_registry(prefixes)))
    maximum = policy.resources.max_limits if policy.resources else None
    if maximum is not None:
        for kind in ("requests", "limits"):
            given = getattr(spec.resources, kind)
            for resource in RESOURCE_NAMES:
                value, bound = given.get(resource), maximum.get(resource)
                if (
                    value is not None
                    and bound is not None
                    and quantity_value(value) > quantity_value(bound)
                ):
                    where = f"{kind}.{resource}"
                    found.append((f"spec.resources.{where}", msg_max(where, value, bound)))
    allowed = policy.expose.allowed_namespaces if policy.expose else None
    if spec.expose is not None and allowed is not None:
        # a file without metadata.namespace lands in the client's namespace: unknown offline,
        # so it is checked as "default" (what kubectl uses without a context namespace)
        namespace = app.namespace or "default"
        if namespace not in allowed:
            found.append(("spec.expose", msg_expose(namespace, allowed)))
    return [Problem(app.namespace, app.name, path, message) for path, message in found]


def _smaller(a: str, b: str | None) -> str:
    return a if b is None or quantity_value(a) <= quantity_value(b) else b


def _resources(spec_resources: Resources, policy: PythonAppPolicySpec) -> Resources:
    rp = policy.resources
    if rp is None:
        return spec_resources
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for resource in RESOURCE_NAMES:
        request = spec_resources.requests.get(resource)
        limit = spec_resources.limits.get(resource)
        bound = rp.max_limits.get(resource) if rp.max_limits else None
        if request is None and rp.default_requests and rp.default_requests.get(resource):
            request = _smaller(_smaller(rp.default_requests.get(resource) or "", limit), bound)
        elif request is None and bound is not None and resource in DEFAULT_REQUESTS:
            built_in = DEFAULT_REQUESTS[resource]
            if quantity_value(built_in) > quantity_value(bound):
                request = bound
        if limit is None:
            default = rp.default_limits.get(resource) if rp.default_limits else None
            default = default or DEFAULT_LIMITS.get(resource)
            if default is not None and (rp.default_limits or bound is not None):
                limit = _smaller(default, bound)
                if request is not None and quantity_value(limit) < quantity_value(request):
                    limit = request  # the renderer's rule: a limit never below its request
        if request is not None:
            requests[resource] = request
        if limit is not None:
            limits[resource] = limit
    return Resources.model_validate({"requests": requests, "limits": limits})


def with_defaults(app: PythonApp, policy: PythonAppPolicySpec | None) -> PythonApp:
    """``app`` as the renderer should see it under ``policy`` (the module doc says how)."""
    if policy is None:
        return app
    spec = app.spec
    named = {ref.name for ref in spec.image_pull_secrets}
    pulls = list(spec.image_pull_secrets) + [
        ImagePullSecret(name=ref.name) for ref in policy.image_pull_secrets if ref.name not in named
    ]
    new_spec = spec.model_copy(
        update={"image_pull_secrets": pulls, "resources": _resources(spec.resources, policy)}
    )
    return app.model_copy(update={"spec": new_spec})


def route_defaults(options: RouteDefaults, policy: PythonAppPolicySpec | None) -> RouteDefaults:
    """The route defaults under ``policy``: each option that is set wins, the policy fills the
    rest (``route_api``: the option's ``ingress`` wins; its default ``auto`` leaves the choice
    to the policy)."""
    expose = policy.expose if policy else None
    if expose is None:
        return options
    gateway = options.gateway
    if gateway is None and expose.gateway is not None:
        gateway = Gateway(expose.gateway.namespace, expose.gateway.name)
    route_api = options.route_api
    if route_api == "auto" and expose.route_api is not None:
        route_api = expose.route_api
    return RouteDefaults(
        gateway=gateway,
        ingress_class=options.ingress_class or expose.ingress_class,
        route_api=route_api,
    )


def describe(policy: PythonAppPolicySpec | None) -> Mapping[str, object]:
    """What a policy sets, for one log line (never values a reader could not see anyway)."""
    if policy is None:
        return {"policy": "none"}
    return {
        "allowedRegistries": len(policy.allowed_registries or []),
        "resources": policy.resources is not None,
        "imagePullSecrets": [ref.name for ref in policy.image_pull_secrets],
        "expose": policy.expose is not None,
    }
