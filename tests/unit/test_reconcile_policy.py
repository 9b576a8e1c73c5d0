"""The platform policy in the reconcile: its defaults rendered, an app it no longer admits
reported (Stalled, PolicyViolation) with what runs left as it is, and a policy change makes a
new plan."""

from __future__ import annotations

import copy
from typing import Any

from tests.policy_cases import FOREIGN_IMAGE, POLICY_SPEC
from tests.unit.test_reconcile import World, unchanged

from pythonapp_operator.api.policy import PythonAppPolicySpec
from pythonapp_operator.controller.reconcile import Snapshot

POLICY = PythonAppPolicySpec.model_validate(POLICY_SPEC)


class PolicyWorld(World):
    policy: PythonAppPolicySpec | None = None

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        return Snapshot(snap.app, snap.children, snap.versions, policy=self.policy)

    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.api.objects["Deployment", "team-a", "shop"]["spec"]
        return spec["template"]["spec"]  # type: ignore[no-any-return]


def test_the_policys_defaults_are_rendered() -> None:
    world = PolicyWorld()
    world.policy = POLICY
    world.reconcile()
    pod = world.pod()
    assert pod["imagePullSecrets"] == [{"name": "platform-pull"}]
    resources = pod["containers"][0]["resources"]
    assert (resources["requests"]["cpu"], resources["limits"]["cpu"]) == ("200m", "500m")
    assert world.condition("Stalled")["status"] == "False"


def test_a_new_policy_that_refuses_the_app_stalls_it_and_touches_nothing() -> None:
    world = PolicyWorld(image=FOREIGN_IMAGE)
    world.reconcile()
    world.sync()
    before = copy.deepcopy(world.api.objects["Deployment", "team-a", "shop"])
    world.policy = POLICY  # the platform team narrows the registries
    world.reconcile()
    assert [c for c in world.api.calls if c[0] in ("apply", "delete")] == []
    assert unchanged(world.api.objects["Deployment", "team-a", "shop"], before)
    stalled, ready = world.condition("Stalled"), world.condition("Ready")
    assert (stalled["status"], stalled["reason"]) == ("True", "PolicyViolation")
    assert stalled["message"].startswith(
        "spec.image: pythonapp-platform-policy: allowedRegistries: "
    )
    assert (ready["status"], ready["reason"]) == ("False", "PolicyViolation")
    assert "The existing Deployment is left as it was." in ready["message"]
    assert [e[1] for e in world.api.events] == ["PolicyViolation"]
    world.sync()
    world.reconcile()  # the same verdict: no write, no second event
    assert world.api.calls == [] and len(world.api.events) == 1

    world.policy = None  # the policy goes (or admits the app again): reconciled as before
    world.reconcile()
    assert world.condition("Stalled")["status"] == "False"
