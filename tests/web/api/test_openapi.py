"""The OpenAPI document: valid, generated from the live schema, regenerated when the
schema changes; and a bounded schemathesis run against it on both databases."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from tests.web.api.conftest import error_of

DOC = "/api/v1/openapi.json"


def test_the_document_is_valid_openapi(client):
    resp = client.get(DOC)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    assert set(schemas["Error"]["properties"]["error"]["required"]) == {
        "code",
        "message",
        "details",
    }
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    fields = schemas["customers.record"]["properties"]["fields"]["properties"]
    assert fields["stage"]["enum"] == ["lead", "potential", "customer", None]
    assert fields["created_at"]["readOnly"] is True
    inputs = schemas["customers.create"]["properties"]["fields"]["properties"]
    assert "created_at" not in inputs and "stage" in inputs
    deals = schemas["deals.record"]["properties"]["fields"]["properties"]
    assert deals["number"]["readOnly"] is True  # autonumber
    assert "/tables/deals/records/{id}" in doc["paths"]
    assert "/tables/deals/records/bulk" in doc["paths"]
    bulk = schemas["deals.bulk"]["properties"]["records"]
    assert bulk["maxItems"] == 1000


def test_the_document_follows_schema_changes(client, app):
    first = client.get(DOC)
    etag = first.headers["ETag"]
    assert client.get(DOC, headers={"If-None-Match": etag}).status_code == 304
    platform = app.extensions["cubebase"]
    with platform.schema_editor() as editor:
        editor.add_field("deals", {"key": "score", "type": "formula", "formula": "amount * 2"})
        editor.add_field("deals", {"key": "kind", "type": "select", "options": ["x", "y"]})
    second = client.get(DOC)
    assert second.headers["ETag"] != etag
    doc = second.get_json()
    validate(doc)
    fields = doc["components"]["schemas"]["deals.record"]["properties"]["fields"]["properties"]
    assert fields["score"]["readOnly"] is True
    assert fields["kind"]["enum"] == ["x", "y", None]
    assert (
        "score"
        not in doc["components"]["schemas"]["deals.create"]["properties"]["fields"]["properties"]
    )


def test_a_document_needs_a_caller(app):
    resp = app.test_client().get(DOC)
    assert resp.status_code == 401
    error_of(resp)


MAX_EXAMPLES = int(os.environ.get("CUBEBASE_SCHEMATHESIS_EXAMPLES", "8"))


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_5xx_and_every_response_conforms(app, token, client, mode):
    """Every operation of the live document, with generated valid (positive) or
    invalid (negative) input: no 5xx, and each response's status, content type and
    body match the document."""
    # some records to hit, so generated ids find something now and then
    for name in ("a", "b", "c"):
        client.post("/api/v1/tables/customers/records", json={"fields": {"name": name}})
    run_schemathesis(app, token, mode, MAX_EXAMPLES, lambda op: not _changes_the_schema(op))


# Operations that change tables' fields: a generated call could add or retype a field of
# a table whose record shape the run checks against the document loaded at its start.
# They are fuzzed in a run of their own, among the schema operations only.
SCHEMA_WRITES = {("POST", "/schema/apply"), ("POST", "/schema/tables/{table}/fields")}


def _changes_the_schema(op) -> bool:
    return (op.method.upper(), op.path) in SCHEMA_WRITES


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_on_the_schema_endpoints(app, token, mode):
    """The schema endpoints, with apply and add-field too: no 5xx, and every response
    conforms (their answers do not depend on the tables' shapes)."""
    run_schemathesis(
        app, token, mode, MAX_EXAMPLES * 2, lambda op: op.path.startswith("/schema"), 4
    )


def run_schemathesis(
    app, token: str, mode: str, examples: int, include=lambda op: True, at_least: int = 10
) -> None:
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    app.extensions["cubebase"].config.api_rate_limit = 0
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi(DOC, app, headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if include(op)]
    assert len(operations) > at_least
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    strategy = st.one_of(*(op.as_strategy(generation_mode=generation) for op in operations))

    @given(case=strategy)
    @settings(
        max_examples=examples * len(operations),
        deadline=None,
        derandomize=os.environ.get("CUBEBASE_SCHEMATHESIS_RANDOM") != "1",
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call(headers=auth)
        case.validate_response(response, checks=checks)

    run()
