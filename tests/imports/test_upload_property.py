"""Whatever bytes arrive as a CSV upload, the answer is a preview (201) or a clear 4xx with the
API contract's error body, never a 500."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.imports.support import upload

_CELL = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(
        ["07911 123451", "+44 7911 123452", '"quoted, cell"', '"multi\nline"', "", "£5", "é"]
    ),
)
_CSVISH = st.builds(
    lambda rows, delim, newline, encoding: newline.join(delim.join(r) for r in rows).encode(
        encoding, errors="ignore"
    ),
    st.lists(st.lists(_CELL, min_size=1, max_size=5), min_size=1, max_size=6),
    st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]),
)
_PREFIXED = st.builds(
    lambda magic, tail: magic + tail,
    st.sampled_from([b"PK\x03\x04", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"sep=;\n", b""]),
    st.binary(max_size=300),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=st.one_of(st.binary(max_size=2000), _CSVISH, _PREFIXED))
def test_any_bytes_get_a_preview_or_a_clear_4xx(import_api, tenant, content):
    resp = upload(import_api, tenant, content)
    assert resp.status_code in (201, 400, 413, 415), resp.text
    body = resp.json()
    if resp.status_code == 201:
        up = body["upload"]
        assert up["rows_detected"] >= 0
        assert up["columns"] and all(c["name"] for c in up["columns"])
        assert all(len(c["sample_values"]) <= 3 for c in up["columns"])
    else:
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["message"]
