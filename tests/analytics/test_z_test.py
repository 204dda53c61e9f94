"""The database's two-proportion z-test against an independent implementation (Python's
math.erfc) over many inputs, and its refusals below the documented minimum."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def reference(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@st.composite
def samples(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1 = draw(st.integers(30, 20_000))
    n2 = draw(st.integers(30, 20_000))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n2)), n2


# The connection is only read from: sharing it between examples is harmless.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(samples())
def test_z_and_p_match_an_independent_implementation(db, sample):
    x1, n1, x2, n2 = sample
    got = db.execute(
        "select private.two_proportion_z_test(%s, %s, %s, %s) as t", sample
    ).fetchone()["t"]
    p = (x1 + x2) / (n1 + n2)
    if min(n1, n2) * p < 5 or min(n1, n2) * (1 - p) < 5:
        assert got["enough_data"] is False
        assert "z" not in got
        return
    z, pvalue = reference(x1, n1, x2, n2)
    assert got["enough_data"] is True
    assert math.isclose(got["z"], z, rel_tol=1e-9, abs_tol=1e-9)
    assert abs(got["p_value"] - pvalue) < 2e-7
    assert abs(got["confidence"] - (1 - pvalue)) < 2e-7


def test_below_thirty_per_group_is_not_enough_data(db):
    got = db.execute("select private.two_proportion_z_test(10, 29, 20, 500) as t").fetchone()["t"]
    assert got == {"enough_data": False, "reason": "fewer than 30 conversations in a group"}
