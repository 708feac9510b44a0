from __future__ import annotations

import asyncio

import pytest

from js2mail.webhooks import EgressPolicy, WebhookUrlRefused, check_url, resolve_target

STRICT = EgressPolicy()


def resolver(table: dict[str, list[str]]):  # noqa: ANN201
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]
    return resolve


def target(url: str, policy: EgressPolicy = STRICT, table: dict[str, list[str]] | None = None):  # noqa: ANN201
    return asyncio.run(resolve_target(url, policy, resolver=resolver(table or {})))


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "[::1]", "[fe80::1]", "[fc00::1]", "[::ffff:127.0.0.1]",
    "[::ffff:10.0.0.1]", "[2002:c0a8:101::1]", "[64:ff9b::a00:1]", "224.0.0.1", "240.0.0.1",
])
def test_private_and_special_addresses_are_refused(host: str) -> None:
    with pytest.raises(WebhookUrlRefused, match="public addresses only"):
        target(f"http://{host}/hook")


def test_names_are_checked_on_every_address() -> None:
    with pytest.raises(WebhookUrlRefused, match="10.0.0.5"):
        target("https://mixed.example/hook", table={"mixed.example": ["93.184.216.34", "10.0.0.5"]})
    ok = target("https://public.example:8443/h?x=1", table={"public.example": ["93.184.216.34"]})
    assert (ok.address, ok.port, ok.path_qs, ok.host) == ("93.184.216.34", 8443, "/h?x=1", "public.example")


def test_resolution_failure_is_refused() -> None:
    with pytest.raises(WebhookUrlRefused, match="cannot resolve"):
        target("https://nowhere.example/hook")
    with pytest.raises(WebhookUrlRefused, match="no address"):
        target("https://empty.example/hook", table={"empty.example": []})


def test_operator_switches_lift_the_address_rule() -> None:
    assert target("http://127.0.0.1:9000/h", EgressPolicy(allow_private=True)).address == "127.0.0.1"
    allowed = EgressPolicy(allowed_hosts=frozenset({"hooks.internal"}))
    assert target("http://hooks.internal/h", allowed, {"hooks.internal": ["10.0.0.9"]}).address == "10.0.0.9"
    with pytest.raises(WebhookUrlRefused):
        target("http://other.internal/h", allowed, {"other.internal": ["10.0.0.9"]})


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/", "https://example.com/#frag",
                                 "http:///nohost", "javascript:alert(1)", "http://exa mple.com/", "", "http://x:0/"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        check_url(url)


def test_refusal_message_names_the_switch() -> None:
    with pytest.raises(WebhookUrlRefused) as info:
        target("http://127.0.0.1/h")
    assert "allow_private" in (info.value.hint or "")
