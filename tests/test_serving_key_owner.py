"""An endpoint's API key belongs to the workspace user who deployed it: it stops working as soon as that user
is disabled, while the workspace's own key (`lathe invoke`, the agent) goes on working."""
from __future__ import annotations

import openai
import pytest

from core.users import UserStore
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.client import invoke
from runtimes.serving.endpoints.store import EndpointStore
from tests.serving_registry import registered_workspace
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
HELLO = [{"role": "user", "content": "Order 5 ships on day"}]


def test_a_disabled_owner_s_key_is_refused(tmp_path):
    ws = registered_workspace(tmp_path)
    UserStore(ws).add("ana", ["approver"], "a long password")
    d = endpoints.deploy(ws, ["tickets-sft"], name="owned", owner="ana")
    try:
        assert EndpointStore(ws).get("owned").owner == "ana"
        client = openai.OpenAI(base_url=d.endpoint.url, api_key=d.api_key, max_retries=0)
        assert client.chat.completions.create(model="tickets-sft", messages=HELLO, max_tokens=2).choices
        UserStore(ws).disable("ana")

        def refused() -> bool:
            try:
                client.models.list()
                return False
            except openai.AuthenticationError as e:
                assert "revoked" in str(e)
                return True

        wait_for(refused, what="the disabled owner's key to be refused")
        assert invoke(ws, "owned", "Order 5 ships on day", max_tokens=2)  # the workspace's own key still works
    finally:
        endpoints.stop(ws, "owned")
