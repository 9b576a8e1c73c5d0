"""deploy/admission/admissionpolicy.yaml is generated (api/admission.py) and never drifts."""

from __future__ import annotations

from pathlib import Path

from pythonapp_operator.api import admission, policyadmission
from pythonapp_operator.yamlio import load_all

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "deploy" / "admission" / "admissionpolicy.yaml"


def test_the_policy_file_is_the_generated_one() -> None:
    assert POLICY_FILE.read_text() == admission.text(), "run `make admission`"


def test_one_check_per_secret_an_app_may_name() -> None:
    policy, binding = load_all(admission.text())
    validations = policy["spec"]["validations"]
    # spec.secrets (16), spec.imagePullSecrets (4) and spec.expose.tls.secretName
    assert len(validations) == admission.MAX_CHECKED == 21
    assert binding["spec"] == {"policyName": admission.NAME, "validationActions": ["Deny"]}


def test_the_platform_policy_file_is_the_generated_one() -> None:
    path = ROOT / "deploy" / "admission" / "platformpolicy.yaml"
    assert path.read_text() == policyadmission.text(), "run `make admission`"


def test_platform_policy_messages_are_the_offline_ones_with_placeholders() -> None:
    """The CEL message of each rule is the offline message (:mod:`.platformpolicy`) with the
    object's values spliced in: the same text whoever refuses."""
    policy, binding = load_all(policyadmission.text())
    messages = [v["messageExpression"] for v in policy["spec"]["validations"]]
    assert messages[0].startswith("'spec.image: pythonapp-platform-policy: allowedRegistries: ")
    assert "params.spec.allowedRegistries.join(', ')" in messages[0]
    assert "string(object.spec.resources.limits['cpu'])" in messages[4]
    assert messages[-1].startswith("'spec.expose: pythonapp-platform-policy: expose.")
    assert binding["spec"]["paramRef"]["name"] == "cluster"
