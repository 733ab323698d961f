"""Redaction of span resources and tags before a trace leaves the process."""

from ddtrace.trace import Span

from common.trace_redaction import RedactingFilter, redact_span, redact_text


def test_address_in_url_path_is_masked():
    url = "https://graph.example/v1.0/users/rechnungen@example.com/sendMail"
    assert redact_text(url) == "https://graph.example/v1.0/users/r***@example.com/sendMail"


def test_percent_encoded_address_is_masked():
    assert redact_text("/users/rechnungen%40example.com/sendMail") == "/users/r***@example.com/sendMail"


def test_every_address_in_a_message_is_masked():
    message = "Graph answered 400: invalid recipients anna@example.com, bob.b@example.org"
    assert redact_text(message) == "Graph answered 400: invalid recipients a***@example.com, b***@example.org"


def test_bearer_token_is_replaced():
    assert redact_text("Authorization: Bearer abc.def-ghi") == "Authorization: ?"


def test_bare_json_web_token_is_replaced():
    assert redact_text("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl was rejected") == \
        "token ? was rejected"


def test_text_without_secrets_is_unchanged():
    assert redact_text("POST /send-email") == "POST /send-email"


def test_span_resource_is_masked():
    span = Span("requests.request", resource="POST /v1.0/users/rechnungen@example.com/sendMail")
    redact_span(span)
    assert span.resource == "POST /v1.0/users/r***@example.com/sendMail"


def test_authorization_header_tag_is_dropped():
    span = Span("flask.request")
    span.set_tag("http.request.headers.authorization", "Bearer secret")
    redact_span(span)
    assert span.get_tag("http.request.headers.authorization") is None


def test_error_message_tag_is_masked():
    span = Span("nats.process")
    span.set_tag("error.message", "No mailbox anna@example.com")
    redact_span(span)
    assert span.get_tag("error.message") == "No mailbox a***@example.com"


def test_filter_returns_every_span_of_the_trace():
    trace = [Span("a"), Span("b")]
    assert RedactingFilter().process_trace(trace) == trace
