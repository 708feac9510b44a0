from __future__ import annotations

from html.parser import HTMLParser

import pytest

from js2mail import snippets

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
