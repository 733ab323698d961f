"""The OpenAPI documents in docs/openapi/ against the code: request schemas, paths and status codes.

Both directions are checked: each documented request field, path, method and status is accepted or
produced by the code, and each field of the marshmallow schemas and each produced status is documented.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
import requests
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from common.openapi import ADMIN_DOCUMENT, SEND_EMAIL_DOCUMENT, load_document
from common.schema_fields import CustomHeaders, Recipient
from common.schemas import send_email_schema
from common.sender_schemas import key_rotation_schema, sender_create_schema, sender_update_schema
from tests.conftest import free_port, spawn, start_ingest, wait_for_port

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# An unexpected error returns 500. It is documented, but no request can produce it on purpose.
UNPRODUCIBLE_STATUSES = {"500"}


# --- request schemas -----------------------------------------------------------------------------


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        node = document
        for part in path:
            node = node[part]
    return node


def field_facts(field: fields.Field) -> dict[str, Any]:
    """The facts of a marshmallow field that the OpenAPI document states, in JSON Schema terms."""
    facts: dict[str, Any] = {"nullable": field.allow_none}
    if isinstance(field, Recipient):
        # An address string, or an object with address and display name.
        facts["type"] = "object|string"
        facts["format"] = "email"
    elif isinstance(field, CustomHeaders):
        facts["type"] = "object"
    elif isinstance(field, fields.List):
        facts["type"] = "array"
        facts["items"] = field_facts(field.inner)
    elif isinstance(field, fields.Nested):
        facts["type"] = "object"
    elif isinstance(field, fields.Boolean):
        facts["type"] = "boolean"
    elif isinstance(field, fields.Integer):
        facts["type"] = "integer"
    else:
        facts["type"] = "string"
    if isinstance(field, fields.Email):
        facts["format"] = "email"

    for validator in field.validators:
        if isinstance(validator, validate.Length):
            prefix = "Items" if facts["type"] == "array" else "Length"
            if validator.min is not None:
                facts[f"min{prefix}"] = validator.min
            if validator.max is not None:
                facts[f"max{prefix}"] = validator.max
        elif isinstance(validator, validate.Regexp):
            facts["pattern"] = validator.regex.pattern
        elif isinstance(validator, validate.Range):
            facts["minimum"], facts["maximum"] = validator.min, validator.max
    return facts


def property_facts(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The same facts as field_facts, read from a documented property."""
    node = resolve(document, node)
    if "oneOf" in node:
        options = [resolve(document, option) for option in node["oneOf"]]
        formats = {option["format"] for option in options if "format" in option}
        facts = {"nullable": False, "type": "|".join(sorted(option["type"] for option in options))}
        if formats:
            facts["format"] = formats.pop()
        return facts
    types = node["type"] if isinstance(node["type"], list) else [node["type"]]
    facts: dict[str, Any] = {"nullable": "null" in types, "type": next(t for t in types if t != "null")}
    if facts["type"] == "array":
        facts["items"] = property_facts(document, node["items"])
    for keyword in ("format", "minLength", "maxLength", "minItems", "maxItems", "pattern", "minimum",
                    "maximum"):
        if keyword in node:
            facts[keyword] = node[keyword]
    if facts["type"] == "object":
        facts.pop("format", None)
    return facts


def assert_schema_documented(document: dict[str, Any], schema: Schema, documented: dict[str, Any],
                             required_only_without_key: frozenset[str] = frozenset()) -> None:
    documented = resolve(document, documented)
    properties = documented["properties"]

    assert set(properties) == set(schema.fields)
    for name, field in schema.fields.items():
        assert property_facts(document, properties[name]) == field_facts(field), name

    required = {name for name, field in schema.fields.items() if field.required}
    assert set(documented.get("required", [])) == required - required_only_without_key
    unknown = schema.unknown if hasattr(schema, "unknown") else schema.opts.unknown
    assert documented["additionalProperties"] is {RAISE: False, EXCLUDE: True}[unknown]

    for name, field in schema.fields.items():
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            assert_schema_documented(document, field.inner.schema, properties[name]["items"])


def request_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_send_request_matches_schema():
    document = load_document(SEND_EMAIL_DOCUMENT)
    # A keyed request may leave app_tag out: the handler fills in the key's before validation.
    assert_schema_documented(document, send_email_schema(), request_schema(document, "/send-email", "post"),
                             required_only_without_key=frozenset({"app_tag"}))


@pytest.mark.parametrize("path,method,schema", [
    ("/senders", "post", sender_create_schema()),
    ("/senders/{app_tag}", "patch", sender_update_schema()),
    ("/senders/{app_tag}/keys/rotate", "post", key_rotation_schema()),
])
def test_admin_requests_match_schemas(path, method, schema):
    document = load_document(ADMIN_DOCUMENT)
    assert_schema_documented(document, schema, request_schema(document, path, method))


def test_documents_name_their_servers_on_loopback():
    for name in (SEND_EMAIL_DOCUMENT, ADMIN_DOCUMENT):
        assert all(server["url"].startswith("http://127.0.0.1:") for server in load_document(name)["servers"])


# --- paths, methods and status codes against the running functions -------------------------------


class Context:
    """What the producers of each status need: the functions under test and a sender or two."""

    def __init__(self, ingest: str, admin_api: Any, sender: Callable[..., Any], broken_ingest: str,
                 broken_admin: str) -> None:
        self.fresh_tags: list[str] = []
        self.ingest = ingest
        self.admin_api = admin_api
        self.sender = sender
        self.broken_ingest = broken_ingest
        self.broken_admin = broken_admin

    def send(self, key: str | None, url: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        kwargs.setdefault("json", {"recipients": ["a@example.com"]})
        return requests.post(f"{url or self.ingest}/send-email", headers=headers, timeout=30, **kwargs)

    def admin(self, method: str, path: str, token: str | None = None, url: str | None = None,
              **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_api.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{url or self.admin_api.url}{path}", headers=headers, timeout=30,
                                **kwargs)

    def send_twice_with_one_idempotency_key(self) -> requests.Response:
        key, idempotency = self.sender().api_key, {"Idempotency-Key": os.urandom(8).hex()}
        self.send(key, headers=idempotency, json={"recipients": ["a@example.com"], "subject": "first"})
        return self.send(key, headers=idempotency, json={"recipients": ["a@example.com"], "subject": "second"})

    def read_job(self, key: str | None, job_id: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(f"{self.ingest}/jobs/{job_id}", headers=headers, timeout=30)

    def read_own_job(self) -> requests.Response:
        key = self.sender().api_key
        return self.read_job(key, self.send(key).json()["job_id"])

    def fresh_tag(self) -> str:
        """Return an app_tag that no sender has; the fixture deletes its sender after the test."""
        self.fresh_tags.append(f"oa-{os.urandom(4).hex()}")
        return self.fresh_tags[-1]

    def new_sender(self) -> str:
        """Add a sender (removed after the test) and return its app_tag."""
        return self.sender().app_tag


ONE_MEGABYTE = 1024 * 1024
BAD_JSON = {"data": "{nope", "headers": {"Content-Type": "application/json"}}

SEND_PRODUCERS: dict[tuple[str, str, str], Callable[[Context], requests.Response]] = {
    ("/send-email", "post", "202"): lambda c: c.send(c.sender().api_key),
    ("/send-email", "post", "400"): lambda c: c.send(c.sender().api_key, json=None, **BAD_JSON),
    ("/send-email", "post", "401"): lambda c: c.send(None),
    ("/send-email", "post", "403"): lambda c: c.send(c.sender().api_key, json={
        "recipients": ["a@example.com"], "app_tag": c.new_sender()}),
    ("/send-email", "post", "413"): lambda c: c.send(c.sender().api_key, json={
        "recipients": ["a@example.com"], "body_content": "x" * ONE_MEGABYTE}),
    ("/send-email", "post", "422"): lambda c: c.send(c.sender().api_key, json={"recipients": ["kaputt"]}),
    ("/send-email", "post", "503"): lambda c: c.send(c.sender().api_key, url=c.broken_ingest),
    ("/send-email", "post", "409"): lambda c: c.send_twice_with_one_idempotency_key(),
    ("/jobs/{job_id}", "get", "200"): lambda c: c.read_own_job(),
    ("/jobs/{job_id}", "get", "400"): lambda c: c.read_job(c.sender().api_key, "kein-job"),
    ("/jobs/{job_id}", "get", "401"): lambda c: c.read_job(None, "kein-job"),
    ("/jobs/{job_id}", "get", "404"): lambda c: c.read_job(c.sender().api_key, "00000000-0000-4000-8000-000000000000"),
    ("/openapi.json", "get", "200"): lambda c: requests.get(f"{c.ingest}/openapi.json", timeout=10),
}


ADMIN_PRODUCERS: dict[tuple[str, str, str], Callable[[Context], requests.Response]] = {
    ("/senders", "get", "200"): lambda c: c.admin("GET", "/senders"),
    ("/senders", "get", "401"): lambda c: c.admin("GET", "/senders", token="wrong-token-of-enough-length"),
    ("/senders", "get", "503"): lambda c: c.admin("GET", "/senders", url=c.broken_admin),
    ("/senders", "post", "201"): lambda c: c.admin("POST", "/senders", json={
        "app_tag": c.fresh_tag(), "mailbox": "oa@example.com"}),
    ("/senders", "post", "400"): lambda c: c.admin("POST", "/senders", **BAD_JSON),
    ("/senders", "post", "401"): lambda c: c.admin("POST", "/senders", token="wrong-token-of-enough-length"),
    ("/senders", "post", "409"): lambda c: c.admin("POST", "/senders", json={
        "app_tag": c.new_sender(), "mailbox": "oa@example.com"}),
    ("/senders", "post", "422"): lambda c: c.admin("POST", "/senders", json={"app_tag": "X"}),
    ("/senders", "post", "503"): lambda c: c.admin("POST", "/senders", url=c.broken_admin, json={
        "app_tag": "oa-broken", "mailbox": "oa@example.com"}),
    ("/senders/{app_tag}", "get", "200"): lambda c: c.admin("GET", f"/senders/{c.new_sender()}"),
    ("/senders/{app_tag}", "get", "401"): lambda c: c.admin("GET", "/senders/x", token="wrong-token-of-enough"),
    ("/senders/{app_tag}", "get", "404"): lambda c: c.admin("GET", "/senders/gibt-es-nicht"),
    ("/senders/{app_tag}", "get", "503"): lambda c: c.admin("GET", "/senders/x", url=c.broken_admin),
    ("/senders/{app_tag}", "patch", "200"): lambda c: c.admin("PATCH", f"/senders/{c.new_sender()}",
                                                             json={"display_name": "OA"}),
    ("/senders/{app_tag}", "patch", "400"): lambda c: c.admin("PATCH", f"/senders/{c.new_sender()}", **BAD_JSON),
    ("/senders/{app_tag}", "patch", "401"): lambda c: c.admin("PATCH", "/senders/x", token="wrong-token-of-enough"),
    ("/senders/{app_tag}", "patch", "404"): lambda c: c.admin("PATCH", "/senders/gibt-es-nicht",
                                                             json={"enabled": True}),
    ("/senders/{app_tag}", "patch", "422"): lambda c: c.admin("PATCH", f"/senders/{c.new_sender()}", json={}),
    ("/senders/{app_tag}", "patch", "503"): lambda c: c.admin("PATCH", "/senders/x", url=c.broken_admin,
                                                             json={"enabled": True}),
    ("/senders/{app_tag}", "delete", "204"): lambda c: c.admin("DELETE", f"/senders/{c.new_sender()}"),
    ("/senders/{app_tag}", "delete", "401"): lambda c: c.admin("DELETE", "/senders/x", token="wrong-token-of-enough"),
    ("/senders/{app_tag}", "delete", "404"): lambda c: c.admin("DELETE", "/senders/gibt-es-nicht"),
    ("/senders/{app_tag}", "delete", "503"): lambda c: c.admin("DELETE", "/senders/x", url=c.broken_admin),
    ("/senders/{app_tag}/keys/rotate", "post", "201"): lambda c: c.admin(
        "POST", f"/senders/{c.new_sender()}/keys/rotate"),
    ("/senders/{app_tag}/keys/rotate", "post", "400"): lambda c: c.admin(
        "POST", f"/senders/{c.new_sender()}/keys/rotate", **BAD_JSON),
    ("/senders/{app_tag}/keys/rotate", "post", "401"): lambda c: c.admin(
        "POST", "/senders/x/keys/rotate", token="wrong-token-of-enough"),
    ("/senders/{app_tag}/keys/rotate", "post", "404"): lambda c: c.admin("POST", "/senders/gibt-es-nicht/keys/rotate"),
    ("/senders/{app_tag}/keys/rotate", "post", "422"): lambda c: c.admin(
        "POST", f"/senders/{c.new_sender()}/keys/rotate", json={"grace_seconds": "bald"}),
    ("/senders/{app_tag}/keys/rotate", "post", "503"): lambda c: c.admin(
        "POST", "/senders/x/keys/rotate", url=c.broken_admin),
    ("/openapi.json", "get", "200"): lambda c: requests.get(f"{c.admin_api.url}/openapi.json", timeout=10),
}

PRODUCERS = {SEND_EMAIL_DOCUMENT: SEND_PRODUCERS, ADMIN_DOCUMENT: ADMIN_PRODUCERS}


def documented_statuses(name: str) -> set[tuple[str, str, str]]:
    document = load_document(name)
    return {(path, method, status)
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS
            for status in operation["responses"]}


@pytest.mark.parametrize("name", [SEND_EMAIL_DOCUMENT, ADMIN_DOCUMENT])
def test_every_produced_status_is_documented(name):
    assert set(PRODUCERS[name]) - documented_statuses(name) == set()


@pytest.mark.parametrize("name", [SEND_EMAIL_DOCUMENT, ADMIN_DOCUMENT])
def test_every_documented_status_has_a_producer(name):
    documented = {case for case in documented_statuses(name) if case[2] not in UNPRODUCIBLE_STATUSES}
    assert documented - set(PRODUCERS[name]) == set()


@pytest.fixture(scope="module")
def broken_ingest(service_env, database, log_dir):
    """An ingest whose NATS is unreachable, so every accepted request ends in 503."""
    process, url = start_ingest(service_env, log_dir, name="ingest-no-nats",
                                NATS_URL=f"nats://127.0.0.1:{free_port()}", PUBLISH_TIMEOUT_SECONDS="1")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def broken_admin(service_env, admin_api, log_dir):
    """An admin function whose PostgreSQL is unreachable."""
    port = free_port()
    env = {**os.environ, **service_env, "WORKERS": "1", "ADMIN_TOKEN": admin_api.token,
           "DB_DSN": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    process = spawn("admin-no-db", [sys.executable, "-m", "functions_framework", "--target", "admin",
                                    "--source", "functions/admin/main.py", "--port", str(port),
                                    "--host", "127.0.0.1"], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture
def context(ingest, admin_api, sender, broken_ingest, broken_admin, database):
    created = Context(ingest, admin_api, sender, broken_ingest, broken_admin)
    yield created
    for tag in created.fresh_tags:
        database.run("DELETE FROM senders WHERE app_tag = :t", t=tag)


ALL_CASES = [(name, case) for name, producers in PRODUCERS.items() for case in producers]


@pytest.mark.integration
@pytest.mark.parametrize("name,case", ALL_CASES, ids=[f"{n}:{c[1]} {c[0]} {c[2]}" for n, c in ALL_CASES])
def test_documented_status_is_produced(context, name, case):
    response = PRODUCERS[name][case](context)
    assert response.status_code == int(case[2])
    if response.status_code >= 400:
        assert {"error", "message"} <= set(response.json())


@pytest.mark.integration
@pytest.mark.parametrize("name", [SEND_EMAIL_DOCUMENT, ADMIN_DOCUMENT])
def test_served_document_equals_file(ingest, admin_api, name):
    url = {SEND_EMAIL_DOCUMENT: ingest, ADMIN_DOCUMENT: admin_api.url}[name]
    assert requests.get(f"{url}/openapi.json", timeout=10).json() == load_document(name)


@pytest.mark.integration
def test_undocumented_admin_methods_are_405(admin_api):
    document = load_document(ADMIN_DOCUMENT)
    for path, item in document["paths"].items():
        if path == "/openapi.json":
            continue
        concrete = path.replace("{app_tag}", "some-app")
        for method in set(HTTP_METHODS) - set(item):
            response = requests.request(method, f"{admin_api.url}{concrete}", timeout=10,
                                        headers={"Authorization": f"Bearer {admin_api.token}"})
            assert response.status_code == 405, (method, path)
