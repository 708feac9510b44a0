"""Copy-paste snippets: the contact form in three CSS flavors (same fields, same behaviour), the
AI site-builder prompts, and `POST /v1/send` examples in six languages. Pure text."""

from __future__ import annotations

FLAVORS = ("plain", "tailwind", "bootstrap")
PLATFORMS = ("lovable", "bolt", "v0", "cursor", "generic")
LANGS = ("curl", "python", "node", "php", "go", "ruby")

# One form, three CSS layers: only these class names (and the stylesheet line) differ.
_CSS = {
    "plain": {"form": "js2mail-form", "label": "js2mail-label", "input": "js2mail-input", "button": "js2mail-button",
              "status": "js2mail-status"},
    "tailwind": {"form": "max-w-md space-y-4", "label": "block text-sm font-medium text-gray-700",
                 "input": "mt-1 block w-full rounded-md border border-gray-300 px-3 py-2 shadow-sm "
                          "focus:border-indigo-500 focus:outline-none",
                 "button": "rounded-md bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-500 "
                           "disabled:opacity-50",
                 "status": "text-sm"},
    "bootstrap": {"form": "needs-validation", "label": "form-label", "input": "form-control mb-3",
                  "button": "btn btn-primary", "status": "form-text"},
}
_STYLESHEET = {
    # Scoped to the form's class (two classes beat a site's `input[type=text]` or `form label`), so the
    # form looks the same pasted into a bare page or an old stylesheet, and styles nothing else.
    "plain": """<style>
  .js2mail-form { box-sizing: border-box; display: flex; flex-direction: column; gap: .9rem; width: 100%;
                  max-width: 28rem; margin: 0; font: 1rem/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
                  color: #1f2937; }
  .js2mail-form .js2mail-label { display: flex; flex-direction: column; gap: .3rem; margin: 0; font-size: .9rem;
                                 font-weight: 600; }
  .js2mail-form .js2mail-input { box-sizing: border-box; display: block; width: 100%; margin: 0;
                                 padding: .55rem .65rem; border: 1px solid #9ca3af; border-radius: .375rem;
                                 background: #fff; color: #111827; font: inherit; font-weight: 400; }
  .js2mail-form textarea.js2mail-input { min-height: 7rem; resize: vertical; }
  .js2mail-form .js2mail-input:focus { border-color: #4f46e5; }
  .js2mail-form .js2mail-input:focus-visible,
  .js2mail-form .js2mail-button:focus-visible { outline: 3px solid #818cf8; outline-offset: 2px; }
  .js2mail-form .js2mail-button { box-sizing: border-box; width: 100%; margin: 0; padding: .6rem 1rem; border: 0;
                                  border-radius: .375rem; background: #4f46e5; color: #fff; font: inherit;
                                  font-weight: 600; cursor: pointer; }
  .js2mail-form .js2mail-button:hover { background: #4338ca; }
  .js2mail-form .js2mail-button:disabled { opacity: .6; cursor: progress; }
  .js2mail-form .js2mail-status { margin: 0; min-height: 1.4em; font-size: .9rem; }
  .js2mail-form .js2mail-status[data-result=ok] { color: #047857; }
  .js2mail-form .js2mail-status[data-result=error] { color: #b91c1c; }
</style>""",
    "tailwind": "<!-- Tailwind CSS: skip this line if your site already loads it -->\n"
                '<script src="https://cdn.tailwindcss.com"></script>',
    "bootstrap": "<!-- Bootstrap 5: skip this line if your site already loads it -->\n"
                 '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/css/bootstrap.min.css">',
}

_AJAX = """<script>
  (function () {
    var form = document.getElementById("js2mail-form-%(id)s");
    var status = form.querySelector("[data-js2mail-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = "Sending…";
      fetch(form.action, { method: "POST", body: new FormData(form), headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json().catch(function () { return {}; }); })
        .then(function (data) {
          if (data.status === "queued") {
            form.reset();
            status.textContent = "Thanks! Your message has been sent.";
            status.setAttribute("data-result", "ok");
          } else {
            status.textContent = (data.error && data.error.message) || "Sorry, something went wrong.";
            status.setAttribute("data-result", "error");
          }
        })
        .catch(function () {
          status.textContent = "Network error: please try again.";
          status.setAttribute("data-result", "error");
        })
        .finally(function () { button.disabled = false; });
    });
  })();
</script>"""


def form_action(public_id: str, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/f/{public_id}"


def form_snippet(*, public_id: str, public_url: str, flavor: str, ajax: bool = False) -> str:
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}")
    c = _CSS[flavor]
    form = f"""{_STYLESHEET[flavor]}
<form id="js2mail-form-{public_id}" class="{c['form']}" action="{form_action(public_id, public_url)}" method="POST">
  <label class="{c['label']}">Name
    <input class="{c['input']}" type="text" name="name" autocomplete="name" required>
  </label>
  <label class="{c['label']}">Email
    <input class="{c['input']}" type="email" name="email" autocomplete="email" required>
  </label>
  <label class="{c['label']}">Message
    <textarea class="{c['input']}" name="message" rows="5" required></textarea>
  </label>
  <input type="hidden" name="_subject" value="New message from your website">
  <!-- Honeypot: people never see or fill it; bots do, and their submissions are dropped. -->
  <input type="text" name="_gotcha" tabindex="-1" autocomplete="off" aria-hidden="true"
         style="position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden">
  <button class="{c['button']}" type="submit">Send</button>
  <p class="{c['status']}" data-js2mail-status role="status" aria-live="polite"></p>
</form>"""
    return form + ("\n" + _AJAX % {"id": public_id} if ajax else "") + "\n"


_STACK = {
    "lovable": "a React + Vite + Tailwind project (Lovable)",
    "bolt": "a Vite/React project (Bolt)",
    "v0": "a Next.js app with React and Tailwind (v0)",
    "cursor": "this codebase (use its framework and styling conventions)",
    "generic": "the site (any framework, or plain HTML)",
}


def builder_prompt(*, public_id: str, public_url: str, platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")
    action = form_action(public_id, public_url)
    return f"""Add a working contact form to {_STACK[platform]}. No backend, no SDK, no API key: submissions go to
a js2mail form endpoint, which emails them to the site owner.

Endpoint: POST {action}

Fields (use exactly these names):
- name      text, required
- email     email, required (becomes the Reply-To of the mail the owner gets)
- message   textarea, required
- _subject  optional hidden field: the subject line of the owner's mail
- _gotcha   a honeypot: a text input hidden from people (off-screen, tabindex="-1", autocomplete="off",
            aria-hidden="true"). Never fill it: submissions with it filled are silently dropped.

Submit with JavaScript so the visitor stays on the page:
  fetch("{action}", {{ method: "POST", body: new FormData(form), headers: {{ "Accept": "application/json" }} }})
- Success: HTTP 200 with {{"status":"queued"}} -> clear the form and show "Thanks! Your message has been sent."
- Failure: a 4xx with {{"status":"error","error":{{"code":"...","message":"..."}}}} -> show error.message inline,
  keep what the visitor typed. A 429 means too many submissions: ask them to try again in a minute.
- Disable the submit button while sending; show a network-error message if fetch itself fails.
Send FormData (or JSON with Content-Type: application/json); do not add custom headers other than Accept.
Do not add a backend route, a server action or any email library: the endpoint above does the sending.
Style it to match the rest of the site; give every input a visible label.
"""


_COMMENT = {"curl": "#", "python": "#", "node": "//", "php": "//", "go": "//", "ruby": "#"}


def api_snippet(*, lang: str, public_url: str, api_key: str = "js2_live_...", from_addr: str | None = None,
                to_addr: str = "customer@example.com", note: str | None = None) -> str:
    """`POST /v1/send` in `lang`. Without `from_addr` the body has no "from": the server then sends
    from the key's application's default mailbox. `note` becomes a comment line on top."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}")
    url = f"{public_url.rstrip('/')}/v1/send"
    sender = f'"from": "{from_addr}", ' if from_addr else ""
    body = (f'{{{sender}"to": "{to_addr}", "subject": "Your order is confirmed", '
            f'"text": "Thanks for your order!", "idempotencyKey": "order-confirmation-order_789"}}')
    top = "".join(f"{_COMMENT[lang]} {line}\n" for line in (note or "").splitlines())
    snippets = {
        "curl": f"""curl -X POST {url} \\
  -H "X-Api-Key: {api_key}" \\
  -H "Content-Type: application/json" \\
  -d '{body}'""",
        "python": f"""import httpx

response = httpx.post(
    "{url}",
    headers={{"X-Api-Key": "{api_key}"}},
    json={body},
)
response.raise_for_status()
print(response.json())  # {{"id": "msg_...", "status": "queued"}}""",
        "node": f"""const response = await fetch("{url}", {{
  method: "POST",
  headers: {{ "X-Api-Key": "{api_key}", "Content-Type": "application/json" }},
  body: JSON.stringify({body}),
}});
console.log(response.status, await response.json());""",
        "php": f"""<?php
$ch = curl_init("{url}");
curl_setopt_array($ch, [
  CURLOPT_POST => true,
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_HTTPHEADER => ["X-Api-Key: {api_key}", "Content-Type: application/json"],
  CURLOPT_POSTFIELDS => '{body}',
]);
echo curl_exec($ch);""",
        "go": f"""package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

func main() {{
	body := strings.NewReader(`{body}`)
	req, _ := http.NewRequest("POST", "{url}", body)
	req.Header.Set("X-Api-Key", "{api_key}")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {{
		panic(err)
	}}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(out))
}}""",
        "ruby": f"""require "net/http"
require "json"

uri = URI("{url}")
request = Net::HTTP::Post.new(uri, "X-Api-Key" => "{api_key}", "Content-Type" => "application/json")
request.body = '{body}'
response = Net::HTTP.start(uri.hostname, uri.port, use_ssl: uri.scheme == "https") {{ |http| http.request(request) }}
puts response.code, response.body""",
    }
    if lang == "php":  # the comment goes after the opening tag
        return snippets[lang].replace("<?php\n", "<?php\n" + top, 1) + "\n"
    return top + snippets[lang] + "\n"
