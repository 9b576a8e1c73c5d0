"""The platform policy's rules offline: violations with the rule named, defaults filled where the
app says nothing (never over what it says), and `validate|render --policy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.policy_cases import CASES, EXPOSE, POLICY_SPEC, app, policy_doc

from pythonapp_operator.api.policy import PythonAppPolicySpec
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.cli import main
from pythonapp_operator.platformpolicy import route_defaults, violations, with_defaults
from pythonapp_operator.render import render
from pythonapp_operator.routing import Gateway, RouteDefaults

POLICY = PythonAppPolicySpec.model_validate(POLICY_SPEC)


def _app(doc: dict[str, Any]) -> Any:
    parsed, problems = validate_document(doc)
    assert parsed is not None, problems
    return parsed


@pytest.mark.parametrize(
    ("doc", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_violations_name_the_field_and_the_rule(
    doc: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    found = violations(_app(doc), POLICY)
    assert [p.path for p in found] == [path for path, _ in expected]
    for problem, (_, rule) in zip(found, expected, strict=True):
        assert problem.message.startswith(f"pythonapp-platform-policy: {rule}: "), problem.message
        assert "PythonAppPolicy cluster" in problem.message


def test_an_empty_policy_admits_everything() -> None:
    for _id, doc, _expected in CASES:
        assert violations(_app(doc), PythonAppPolicySpec()) == []


def test_an_empty_allow_list_allows_no_registry_and_no_namespace() -> None:
    none = PythonAppPolicySpec.model_validate(
        {"allowedRegistries": [], "expose": {"allowedNamespaces": []}}
    )
    paths = [p.path for p in violations(_app(app("web", expose=EXPOSE)), none)]
    assert paths == ["spec.image", "spec.expose"]


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = objs[0]
    assert deployment["kind"] == "Deployment"
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_resource_defaults_fill_only_what_the_app_leaves_unset() -> None:
    objs = render(with_defaults(_app(app()), POLICY))
    resources = _container(objs)["resources"]
    assert resources["requests"]["cpu"] == "200m"  # the policy's default request
    assert resources["limits"]["cpu"] == "500m"  # the policy's default limit
    assert resources["limits"]["memory"] == "512Mi"  # the app's own
    own = app(resources={"requests": {"cpu": "50m"}, "limits": {"cpu": "1500m", "memory": "1Gi"}})
    resources = _container(render(with_defaults(_app(own), POLICY)))["resources"]
    assert (resources["requests"]["cpu"], resources["limits"]["cpu"]) == ("50m", "1500m")


def test_a_default_never_exceeds_the_apps_limit_or_the_maximum() -> None:
    small = app(resources={"limits": {"cpu": "100m", "memory": "512Mi"}})
    resources = _container(render(with_defaults(_app(small), POLICY)))["resources"]
    assert resources["requests"]["cpu"] == "100m"  # 200m default clamped to the app's limit
    capped = PythonAppPolicySpec.model_validate({"resources": {"maxLimits": {"cpu": "250m"}}})
    resources = _container(render(with_defaults(_app(app()), capped)))["resources"]
    assert resources["limits"]["cpu"] == "250m"  # the built-in 1 capped at the maximum
    assert resources["requests"]["cpu"] == "100m"
    without = _container(render(_app(app())))["resources"]
    assert without["limits"]["cpu"] == "1"  # no policy: the built-in default


def test_default_pull_secrets_come_after_the_apps_own_once_each() -> None:
    doc = app(imagePullSecrets=[{"name": "own"}, {"name": "platform-pull"}])
    pod = render(with_defaults(_app(doc), POLICY))[0]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "own"}, {"name": "platform-pull"}]
    pod = render(with_defaults(_app(app()), POLICY))[0]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "platform-pull"}]


def test_route_options_win_over_the_policy_which_fills_the_rest() -> None:
    policy = PythonAppPolicySpec.model_validate(
        {
            "expose": {
                "gateway": {"namespace": "gw", "name": "public"},
                "ingressClass": "nginx",
                "routeApi": "ingress",
            }
        }
    )
    filled = route_defaults(RouteDefaults(), policy)
    assert filled == RouteDefaults(Gateway("gw", "public"), "nginx", "ingress")
    options = RouteDefaults(Gateway("ops", "edge"), "haproxy", "auto")
    assert route_defaults(options, policy) == RouteDefaults(
        Gateway("ops", "edge"), "haproxy", "ingress"
    )
    assert route_defaults(options, None) == options


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_doc()))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(app()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(next(c[1] for c in CASES if c[0] == "foreign-registry")))
    return {"policy": policy, "good": good, "bad": bad}


def test_validate_policy_refuses_with_the_line_format(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(files["bad"])]) == 0  # valid without the policy
    capsys.readouterr()
    assert main(["validate", "--policy", str(files["policy"]), str(files["bad"])]) == 1
    err = capsys.readouterr().err
    assert f"{files['bad']}: team-a/shop: spec.image: pythonapp-platform-policy: " in err
    assert "allowedRegistries" in err
    assert main(["validate", "--policy", str(files["policy"]), str(files["good"])]) == 0


def test_render_policy_applies_defaults_and_refuses_violations(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--policy", str(files["policy"]), str(files["good"])]) == 0
    objs = list(yaml.safe_load_all(capsys.readouterr().out))
    pod = objs[0]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "platform-pull"}]
    assert pod["containers"][0]["resources"]["limits"]["cpu"] == "500m"
    assert main(["render", "--policy", str(files["policy"]), str(files["bad"])]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "allowedRegistries" in captured.err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("", "exactly one PythonAppPolicy (found 0)"),
        (yaml.safe_dump_all([policy_doc(), policy_doc()]), "(found 2)"),
        (yaml.safe_dump(policy_doc({"registries": []})), "PythonAppPolicy: spec.registries:"),
        ("a: [", "policy.yaml:"),
    ],
)
def test_a_bad_policy_file_is_a_usage_error_in_one_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], content: str, said: str
) -> None:
    files["policy"].write_text(content)
    assert main(["validate", "--policy", str(files["policy"]), str(files["good"])]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert err.startswith("pythonapp validate: --policy: ")


def test_advice_looks_at_the_app_as_it_would_run(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """No CPU request of its own: a warning, unless the policy's defaultRequests gives one."""
    assert main(["validate", str(files["good"])]) == 0
    assert "no CPU request" in capsys.readouterr().err
    assert main(["validate", "--policy", str(files["policy"]), str(files["good"])]) == 0
    assert "no CPU request" not in capsys.readouterr().err
