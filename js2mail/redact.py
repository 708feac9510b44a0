"""Redaction of email addresses to their domains: `jane.doe@private.example` → `<redacted>@private.example`.

Pure and idempotent. Applied to provider answers and errors before they are stored, logged or sent in
a webhook (SMTP 5xx texts and Graph/Gmail error messages echo the recipient), and to the log lines
of the dispatcher and the webhook worker through `RedactingFilter`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "<redacted>"
# A local part is anything up to the '@' that cannot end an address in running text (spaces, quotes,
# brackets, separators, '/' of a URL path); `%40` is an '@' inside a URL. An SRS address
# (`SRS0=hash=tt=example.org=jane@forwarder.example`) goes whole: it embeds the original address. A domain is one or more labels (IDNs too).
_ADDRESS = re.compile(
    r"""(?:"[^"\r\n]*"|[^\s"'<>()\[\]{},;:@`\\/]+)(?:@|%40)((?:[\w-]+\.)*[\w-]+|\[[0-9A-Fa-f.:]+\])""",
)


def redact(text: str) -> str:
    """The text with every address replaced by `<redacted>@domain`."""
    if "@" not in text and "%40" not in text:  # most provider answers: no address to look for
        return text
    return _ADDRESS.sub(lambda m: f"{REDACTED}@{m.group(1)}", text)


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().strip(">").lower()


def domains_of(addresses: Iterable[str]) -> list[str]:
    """The sorted distinct domains of these addresses."""
    return sorted({domain_of(a) for a in addresses})


class RedactingFilter(logging.Filter):
    """Redacts a log record's message and traceback before any handler formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
