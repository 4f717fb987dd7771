"""``harbor-cr`` credentials against a registry without the Harbor API (a plain CNCF registry here).

The Harbor vendor lists through ``/api/v2.0`` and falls back to ``/v2/_catalog`` when the API refuses.
On a plain registry that API does not exist (404); the registry's own answer is then the one to report:
a wrong password is 401 (it used to surface as the API's 404 NOT_FOUND), a right one lists the catalog.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.agent import AgentProcess, cr_credentials
from tests.harness.registry import RunningRegistry


def test_harbor_type_on_a_plain_registry_reports_the_registry_answer(
    agent_factory: Callable[..., AgentProcess],
    agent_registry_env: dict[str, str],
    registry_basic: RunningRegistry,
) -> None:
    agent = agent_factory(agent_registry_env)
    wrong = agent.get(
        "/list", headers={"Authorization": cr_credentials(registry_basic, "wrong", cr_type="harbor-cr")}
    )
    assert wrong.status_code == 401, wrong.text
    assert wrong.json()["error"]["code"] == "UNAUTHORIZED"
    right = agent.get("/list", headers={"Authorization": cr_credentials(registry_basic, cr_type="harbor-cr")})
    assert right.status_code == 200, right.text
    assert "busybox" in right.json()
