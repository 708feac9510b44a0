"""`js2mail mcp` over stdio, driven by the MCP SDK's own client: tools create forms and send mail
through the same service code as the REST API."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.support.cli import run_cli
from tests.support.server import REPO, cli_env


def payload(result: Any) -> Any:
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if isinstance(data, dict) and set(data) == {"result"} else data
    return json.loads(result.content[0].text)


async def session(home: Path, *args: str) -> dict[str, Any]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "js2mail", "mcp", *args],
                                   env=cli_env(home), cwd=str(REPO))
    out: dict[str, Any] = {}
    async with Client(params) as client:
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        out["form"] = payload(await client.call_tool("createFormEndpoint", {"to": "owner@example.com",
                                                                          "name": "From MCP"}))
        out["forms"] = payload(await client.call_tool("listFormEndpoints", {}))
        sent = payload(await client.call_tool("sendEmail", {"to": ["bob@example.org"], "subject": "From MCP",
                                                            "text": "hello", "idempotency_key": "mcp-1"}))
        out["sent"] = sent
        out["status"] = payload(await client.call_tool("getMessageStatus", {"message_id": sent["id"]}))
        out["bad"] = await client.call_tool("sendEmail", {"to": ["not an address"], "subject": "x", "text": "y"})
        out["missing"] = await client.call_tool("getMessageStatus", {"message_id": "msg_nope"})
    return out


def test_mcp_tools_create_forms_and_queue_mail(home: Path) -> None:
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                   "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    out = asyncio.run(asyncio.wait_for(session(home, "--api-key", key), 60))
    assert out["tools"] == ["createFormEndpoint", "getMessageStatus", "listFormEndpoints", "sendEmail"]
    assert out["form"]["name"] == "From MCP" and f"/f/{out['form']['id']}" in out["form"]["snippet"]
    assert [f["id"] for f in out["forms"]] == [out["form"]["id"]]
    assert out["sent"]["status"] == "queued" and out["status"]["id"] == out["sent"]["id"]
    assert out["bad"].is_error and "validation_error" in out["bad"].content[0].text
    assert out["missing"].is_error and "message_not_found" in out["missing"].content[0].text
    listed = run_cli("messages", "list", "-w", "acme", "-a", "shop", "--json").json()["data"]
    assert [m["id"] for m in listed] == [out["sent"]["id"]]


def test_mcp_refuses_a_bad_key(home: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "js2mail", "mcp", "--api-key", "js2_live_nope"], env=cli_env(home),
                          cwd=str(REPO), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "not valid" in proc.stderr


async def refused_forms(home: Path, *args: str) -> dict[str, Any]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "js2mail", "mcp", *args],
                                   env=cli_env(home), cwd=str(REPO))
    async with Client(params) as client:
        return {
            "flavor": await client.call_tool("createFormEndpoint", {"to": "owner@example.com", "flavor": "bulma"}),
            "name": await client.call_tool("createFormEndpoint", {
                "to": "owner@example.com", "name": "Contact\r\nBcc : victim@evil.example\r\nX-Injected : yes"}),
            "redirect": await client.call_tool("createFormEndpoint", {
                "to": "owner@example.com", "redirect": "https://site.example/ok\r\nSet-Cookie: a=b"}),
            "forms": payload(await client.call_tool("listFormEndpoints", {})),
        }


def test_mcp_create_form_validates_everything_before_creating(home: Path) -> None:
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                   "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0
    out = asyncio.run(asyncio.wait_for(refused_forms(home, "--workspace", "acme", "--app", "shop"), 60))
    assert out["flavor"].is_error and "flavor must be one of" in out["flavor"].content[0].text
    assert out["name"].is_error and "invalid_name" in out["name"].content[0].text
    assert out["redirect"].is_error and "invalid_url" in out["redirect"].content[0].text
    assert out["forms"] == []
    assert run_cli("forms", "list", "--json").json() == []
