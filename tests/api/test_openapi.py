"""The OpenAPI document states the statuses the API really answers with, each error with the
API contract's body, and request models refuse a JSON value of the wrong type instead of
coercing it."""

from __future__ import annotations

import uuid

import pytest

from tests.support import make_client, make_user

ERROR_REF = "#/components/schemas/ErrorBody"


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def test_no_422_anywhere_the_api_answers_400(api):
    doc = api.get("/openapi.json").json()
    for method, path, op in _operations(doc):
        assert "422" not in op["responses"], f"{method} {path} still promises 422"
        if "requestBody" in op:
            assert "400" in op["responses"], f"{method} {path} does not document its 400"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    # And the API does answer 400, in the API contract's body.
    resp = api.post("/api/messages/ai-generate", json={})
    assert resp.status_code in (400, 401)


def test_signed_in_routes_document_401_and_429_with_the_error_body(api):
    doc = api.get("/openapi.json").json()
    for method, path, op in _operations(doc):
        if not op.get("security"):
            continue
        for status in ("401", "429"):
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"]["$ref"] == ERROR_REF, (method, path, status)
        assert "Retry-After" in op["responses"]["429"]["headers"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/api/me", {"403"}),
        ("post", "/api/messages/ai-generate", {"403", "404", "503", "504"}),
        ("post", "/api/datasets/upload", {"400", "403", "404", "413", "415"}),
        ("post", "/api/datasets/map-and-import", {"403", "404", "409"}),
    ],
)
def test_each_route_documents_its_own_failures(api, method, path, statuses):
    responses = api.get("/openapi.json").json()["paths"][path][method]["responses"]
    assert statuses <= set(responses), sorted(responses)
    for status in statuses:
        assert responses[status]["content"]["application/json"]["schema"]["$ref"] == ERROR_REF


def test_health_documents_its_503(api):
    responses = api.get("/openapi.json").json()["paths"]["/health"]["get"]["responses"]
    assert {"200", "503"} <= set(responses)


@pytest.fixture
def member_headers(db, token_for):
    return token_for(make_user(db, make_client(db, "Strict Ltd"), "admin"))


@pytest.mark.parametrize("flag", ["yes", "true", 1, 0])
def test_ai_generate_refuses_a_flag_that_is_not_a_boolean(api, member_headers, flag):
    body = {
        "lead_id": str(uuid.uuid4()),
        "conversation_id": str(uuid.uuid4()),
        "force_regenerate": flag,
    }
    resp = api.post("/api/messages/ai-generate", json=body, headers=member_headers)
    assert resp.status_code == 400, resp.text
    fields = [d["field"] for d in resp.json()["error"]["details"]]
    assert fields == ["force_regenerate"]


@pytest.mark.parametrize(
    ("campaign", "field"),
    [
        ({"m2_delay_hours": "48"}, "campaign_settings.m2_delay_hours"),
        ({"m1_delay_hours": True}, "campaign_settings.m1_delay_hours"),
        ({"ai_response_delay_seconds": "60"}, "campaign_settings.ai_response_delay_seconds"),
    ],
)
def test_map_and_import_refuses_numbers_sent_as_strings_or_booleans(
    api, member_headers, campaign, field
):
    body = {
        "upload_id": str(uuid.uuid4()),
        "dataset_id": str(uuid.uuid4()),
        "column_mapping": {"first_name": "First", "phone_number": "Phone"},
        "campaign_settings": campaign,
    }
    resp = api.post("/api/datasets/map-and-import", json=body, headers=member_headers)
    assert resp.status_code == 400, resp.text
    assert [d["field"] for d in resp.json()["error"]["details"]] == [field]


def test_unknown_paths_and_methods_answer_in_the_error_body(api):
    for resp, status in ((api.get("/api/nope"), 404), (api.get("/api/datasets/upload"), 405)):
        assert resp.status_code == status, resp.text
        assert set(resp.json()["error"]) == {"code", "message", "details"}
