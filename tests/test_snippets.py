from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from js2mail import snippets
from tests.support.browser import CHROMIUM, PageServer, chromium
from tests.support.cli import run_cli
from tests.support.server import ServerProcess, cli_env, free_port
from tests.support.smtp_server import SmtpServer

URL = "https://mail.example.com"


class Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.forms: list[dict[str, str | None]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append(a)
        if tag in ("input", "textarea", "button"):
            self.fields.append((tag, str(a.get("name") or a.get("type"))))
        if tag not in ("input", "link", "meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"


def parsed(html: str) -> Inputs:
    p = Inputs()
    p.feed(html)
    p.close()
    assert p.open == []
    return p


@pytest.mark.parametrize("ajax", [False, True])
def test_three_flavors_are_the_same_form(ajax: bool) -> None:
    found = {f: parsed(snippets.form_snippet(public_id="pub123", public_url=URL, flavor=f, ajax=ajax))
             for f in snippets.FLAVORS}
    shapes = {tuple(p.fields) for p in found.values()}
    assert len(shapes) == 1
    (shape,) = shapes
    assert ("input", "name") in shape and ("input", "email") in shape and ("textarea", "message") in shape
    assert ("input", "_gotcha") in shape
    for p in found.values():
        assert p.forms[0]["action"] == f"{URL}/f/pub123" and p.forms[0]["method"] == "POST"


def test_only_the_css_layer_differs() -> None:
    plain = snippets.form_snippet(public_id="p", public_url=URL, flavor="plain", ajax=True)
    boot = snippets.form_snippet(public_id="p", public_url=URL, flavor="bootstrap", ajax=True)
    assert plain.split("<script>")[-1] == boot.split("<script>")[-1]  # the same behaviour
    assert "bootstrap" in boot and "bootstrap" not in plain
    assert 'headers: { "Accept": "application/json" }' in plain


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError):
        snippets.form_snippet(public_id="p", public_url=URL, flavor="bulma")
    with pytest.raises(ValueError):
        snippets.builder_prompt(public_id="p", public_url=URL, platform="wix")
    with pytest.raises(ValueError):
        snippets.api_snippet(lang="cobol", public_url=URL)


@pytest.mark.parametrize("platform", snippets.PLATFORMS)
def test_prompts_name_the_endpoint_and_fields(platform: str) -> None:
    text = snippets.builder_prompt(public_id="pub123", public_url=URL, platform=platform)
    for needle in (f"{URL}/f/pub123", "_gotcha", "email", "message", "Accept", '{"status":"queued"}'):
        assert needle in text


@pytest.mark.parametrize("lang", snippets.LANGS)
def test_api_snippets(lang: str) -> None:
    text = snippets.api_snippet(lang=lang, public_url=URL, api_key="js2_live_abc")
    assert f"{URL}/v1/send" in text and "js2_live_abc" in text and "idempotencyKey" in text


# ---------------------------------------------------------------- `js2mail snippet`, run as pasted

@pytest.fixture
def install(home: Path) -> Iterator[dict[str, Any]]:
    """A home whose config names the serve port, a real SMTP mailbox, a key, and `serve` running."""
    port = free_port()
    (home / "config.toml").write_text(f"[server]\nport = {port}\n[dispatch]\npoll_interval = 0.2\n")
    with SmtpServer(tls="none") as smtp:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        with ServerProcess(home, port=port) as server:
            yield {"smtp": smtp, "key": key, "server": server, "home": home}


def pasted(lang: str, key: str) -> str:
    """What `js2mail snippet --lang LANG` prints, with the key pasted in (the one step left to the user)."""
    result = run_cli("snippet", "--lang", lang)
    assert result.code == 0, result.err
    assert "js2_live_..." in result.out
    return result.out.replace("js2_live_...", key)


def test_python_snippet_as_pasted_sends_a_mail(install: dict[str, Any]) -> None:
    code = pasted("python", install["key"])
    assert f'"{install["server"].url}/v1/send"' in code  # the port serve runs on
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env=cli_env(install["home"]))
    assert run.returncode == 0, run.stderr
    assert "'status': 'queued'" in run.stdout
    (got,) = install["smtp"].wait_for(1)
    assert got.mail_from == "shop@example.com" and got.message["From"] == "shop@example.com"
    assert got.rcpt_tos == ["shop@example.com"]  # the first mail lands in the sender's own inbox
    assert "Thanks for your order!" in got.message.get_body(("plain",)).get_content()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_snippet_as_pasted_sends_a_mail(install: dict[str, Any]) -> None:
    script = pasted("curl", install["key"])
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and '"status":"queued"' in run.stdout.replace(" ", ""), (run.stdout, run.stderr)
    (got,) = install["smtp"].wait_for(1)
    assert got.message["From"] == "shop@example.com"


def test_snippet_on_a_fresh_home_uses_the_configured_url_and_says_what_to_do_first(home: Path) -> None:
    (home / "config.toml").write_text('[server]\nport = 9123\npublic_url = "https://mail.example.com/"\n')
    assert "https://mail.example.com/v1/send" in run_cli("snippet", "--lang", "curl").out
    (home / "config.toml").write_text('[server]\nhost = "127.0.0.1"\nport = 9123\n')
    for lang in snippets.LANGS:
        result = run_cli("snippet", "--lang", lang)
        assert result.code == 0 and "http://127.0.0.1:9123/v1/send" in result.out
        assert '"from"' not in result.out  # never a made-up sender that answers 422 from_not_connected
        assert "js2mail mailboxes add" in result.err and "no_default_mailbox" in result.err


def test_every_language_leaves_from_to_the_default_mailbox() -> None:
    for lang in snippets.LANGS:
        text = snippets.api_snippet(lang=lang, public_url=URL, to_addr="shop@example.com", note="a note")
        assert '"from"' not in text and '"to": "shop@example.com"' in text and "a note" in text


# ---------------------------------------------------------------- the plain flavour in a real browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
OLD_SITE_CSS = """<style>
  form label { display: inline; font-weight: normal; margin-right: .5em }
  input[type="text"], input[type="email"], textarea { display: inline-block; width: 12em; margin: 0 .5em }
</style>"""
LABEL_TEXT_BOX = """(selector) => {
  const label = document.querySelector(selector).closest("label");
  const text = [...label.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const range = document.createRange();
  range.selectNodeContents(text);
  const b = range.getBoundingClientRect();
  return { x: b.x, y: b.y, width: b.width, height: b.height };
}"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
@pytest.mark.parametrize(("page_css", "width"), [("", 1000), (OLD_SITE_CSS, 1000), ("", 360)],
                         ids=["bare-page", "old-site-stylesheet", "bare-phone"])
def test_plain_flavor_is_a_stacked_full_width_form_in_chromium(page_css: str, width: int,
                                                               request: pytest.FixtureRequest) -> None:
    html = snippets.form_snippet(public_id="pub123", public_url=URL, flavor="plain")
    with PageServer() as pages, chromium() as browser:
        pages.pages["/contact"] = (f"<!doctype html><html><head><meta charset=utf-8>{page_css}</head>"
                                   f"<body><h1>Contact us</h1>{html}<p>Footer text</p></body></html>")
        page = browser.new_page()
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(pages.origin + "/contact")
        form = page.locator("form").bounding_box()
        for field in ("input[name=name]", "input[name=email]", "textarea[name=message]"):
            text = page.evaluate(LABEL_TEXT_BOX, field)
            box = page.locator(field).bounding_box()
            assert text["y"] + text["height"] <= box["y"] + 0.5, (field, text, box)  # the label is above
            assert abs(text["x"] - box["x"]) < 2, (field, text, box)  # ...not beside it
            assert box["width"] >= 0.8 * form["width"], (field, box, form)
        button = page.locator("button[type=submit]").bounding_box()
        assert button["y"] >= page.locator("textarea").bounding_box()["y"]  # one column, in order
        # a visible focus ring on the field being typed in
        page.focus("input[name=email]")
        ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                             " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
        assert ring[0] == "solid" and ring[1] >= 2, ring
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"plain-form-{request.node.callspec.id}.png"), full_page=True)
