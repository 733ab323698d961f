"""What never leaves the process in a span: addresses, tokens, secrets and credential headers.

Spans carry no mail body because no integration here tags request or response bodies; what can
reach a tag is a URL or an error message. Graph's sendMail URL contains the sender mailbox, and an
error message may quote an address or a header, so every finished trace passes RedactingFilter.
"""

from __future__ import annotations

import re

from ddtrace.trace import Span, TraceFilter

from common.logs import mask_address

# An address as it appears in URLs, messages and JSON: '@' may be percent-encoded, and '/' ends the
# local part because it separates URL path segments.
ADDRESS_PATTERN = re.compile(r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# An HTTP authorization value, or a JSON web token (Entra ID's access tokens are JWTs) on its own.
CREDENTIAL_PATTERN = re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9._-]+")
# A tag whose name contains one of these is dropped whatever its value, for example the
# http.request.headers.authorization tag that DD_TRACE_HEADER_TAGS could add.
SECRET_TAG_WORDS = ("authorization", "cookie", "secret", "password", "token", "api_key", "apikey")
REDACTED = "?"


def redact_text(text: str) -> str:
    """Return text with credentials replaced and e-mail addresses masked as in log lines."""
    text = CREDENTIAL_PATTERN.sub(REDACTED, text)
    return ADDRESS_PATTERN.sub(lambda match: mask_address(match.group(0).replace("%40", "@")), text)


def is_secret_tag(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_TAG_WORDS)


def redact_span(span: Span) -> None:
    """Mask addresses and credentials in the span's resource and string tags; drop secret tags."""
    if span.resource:
        span.resource = redact_text(span.resource)
    for name, value in span.get_tags().items():
        if is_secret_tag(name):
            span.remove_tag(name)
            continue
        redacted = redact_text(value)
        if redacted != value:
            span.set_tag(name, redacted)


class RedactingFilter(TraceFilter):
    """A ddtrace trace processor that redacts every span of a finished trace before it is sent."""

    def process_trace(self, trace: list[Span]) -> list[Span] | None:
        for span in trace:
            redact_span(span)
        return trace
