"""deploy/admission/admissionpolicy.yaml is generated (api/admission.py) and never drifts."""

from __future__ import annotations

from pathlib import Path

from pythonapp_operator.api import admission
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
