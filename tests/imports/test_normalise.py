"""Row normalisation: the fast phone path agrees with phonenumbers (dbr.phones) on every
shape it answers, dates honour the client's region, names and emails are tidied."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbr import phones
from dbr.datasets.fastphone import PhoneNormaliser
from dbr.datasets.mapping import suggest_mapping
from dbr.datasets.normalise import clean_email, parse_date, tidy_name, tidy_postcode

_REGIONS = ["GB", "US", "IE", "DE", "FR", "AU", "JE", "IM", "CA", "IT", "BR", "IN"]
_digits = st.text(alphabet="0123456789", min_size=1, max_size=14)
_SHAPES = st.one_of(
    st.builds(lambda d: "07" + d, _digits),
    st.builds(lambda d: "+44 7" + d, _digits),
    st.builds(lambda d: "0044 " + d, _digits),
    st.builds(lambda d: "+44 (0)" + d, _digits),
    st.builds(lambda d: "+" + d, _digits),
    st.builds(lambda d: "00" + d, _digits),
    st.builds(lambda d: "(" + d[:3] + ") " + d[3:], _digits),
    st.builds(lambda a, b: f"+1 {a}-{b}", _digits, _digits),
    st.builds(lambda d: "0" + d, _digits),
    _digits,
    st.builds(lambda d: "+44 1534 " + d, _digits),
    st.builds(lambda d: "07624 " + d, _digits),
    st.builds(lambda d: "+353 8" + d, _digits),
    st.builds(lambda d: "+49 1" + d, _digits),
    st.builds(lambda d: "447" + d, _digits),
    st.builds(lambda d: "44" + d, _digits),
    st.builds(lambda d: "4407" + d, _digits),
    st.builds(lambda d: "1" + d, _digits),
    st.builds(lambda d: "353" + d, _digits),
)


@settings(max_examples=1500, deadline=None)
@given(raw=_SHAPES, region=st.sampled_from(_REGIONS))
def test_fast_phone_path_agrees_with_phonenumbers(raw, region):
    fast = PhoneNormaliser(region).fast(raw)
    if fast is None:
        return  # the reference path answers these
    ref = phones.normalise(raw, region)
    assert fast.e164 == ref.e164
    assert fast.timezone == phones.timezone_for(ref.e164)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("07911 123456", "GB", "+447911123456"),
        ("+44 (0)7911 123456", "GB", "+447911123456"),
        ("0044 7911 123456", "GB", "+447911123456"),
        ("7911123456", "GB", "+447911123456"),
        ("447911123456", "GB", "+447911123456"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("1-212-555-0123", "US", "+12125550123"),
        ("+1 650 253 0000", "GB", "+16502530000"),
    ],
)
def test_phone_shapes_people_type(raw, region, e164):
    assert PhoneNormaliser(region)(raw).e164 == e164


def test_invalid_phone_keeps_the_reference_reason():
    got = PhoneNormaliser("GB")("07911 12345")
    assert got.e164 is None
    assert got.error == phones.normalise("07911 12345", "GB").error


@pytest.mark.parametrize(
    ("raw", "month_first", "iso"),
    [
        ("2023-03-04", False, "2023-03-04"),
        ("2023/3/4 14:05", False, "2023-03-04"),
        ("03/04/2023", False, "2023-04-03"),
        ("03/04/2023", True, "2023-03-04"),
        ("25/12/22", True, "2022-12-25"),
        ("12/25/2022", False, "2022-12-25"),
        ("4.3.2023", False, "2023-03-04"),
        ("4th March 2023", False, "2023-03-04"),
        ("Mar 4, 2023", False, "2023-03-04"),
        ("04-Mar-23", False, "2023-03-04"),
        ("20230304", False, "2023-03-04"),
        ("44989", False, "2023-03-04"),  # Excel serial
        ("31/02/2023", False, None),
        ("13/13/2023", False, None),
        ("yesterday", False, None),
        ("", False, None),
    ],
)
def test_dates(raw, month_first, iso):
    assert parse_date(raw, month_first=month_first) == iso


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("  JOHN   SMITH ", "John Smith"),
        ("mary-jane", "Mary-Jane"),
        ("O'NEIL", "O'Neil"),
        ("mcdonald", "McDonald"),
        ("DeVito", "DeVito"),
        ("van Dyke", "van Dyke"),
        ("ZOË", "Zoë"),
        ("   ", None),
    ],
)
def test_names(raw, tidy):
    assert tidy_name(raw) == tidy


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" Ann.Lee@Example.COM ", "ann.lee@example.com"),
        ("mailto:bob@example.co.uk", "bob@example.co.uk"),
        ("<cat@example.org>", "cat@example.org"),
        ("not-an-email", None),
        ("a@b", None),
        ("two@@example.com", None),
        ("dots..here@example.com", None),
    ],
)
def test_emails(raw, clean):
    assert clean_email(raw) == clean


def test_postcodes():
    assert tidy_postcode("sw1a1aa") == "SW1A 1AA"
    assert tidy_postcode(" m1   1ae ") == "M1 1AE"
    assert tidy_postcode("90210") == "90210"


def test_suggestions_prefer_headers_then_values():
    columns = ["Full Name", "Mobile", "Landline", "Contact", "Email Address", "DOB"]
    samples = [
        ["Ann Lee"],
        ["07911 123451"],
        ["020 7946 0018"],
        ["ann@example.com"],  # "Contact" holding emails: the values win
        ["ann@example.com"],
        ["01/02/1980"],
    ]
    got = suggest_mapping(columns, samples, "GB")
    assert got["Full Name"] == "first_name"
    assert got["Mobile"] == "phone_number"
    assert got["Email Address"] == "email"
    assert got["DOB"] is None  # a date of birth is not the enquiry date
    assert list(got.values()).count("phone_number") == 1
    assert list(got.values()).count("email") == 1


@settings(max_examples=1500, deadline=None)
@given(raw=_SHAPES, region=st.sampled_from(_REGIONS))
def test_fast_phone_path_gives_phonenumbers_number_type(raw, region):
    fast = PhoneNormaliser(region).fast(raw)
    if fast is None:
        return
    import phonenumbers

    assert fast.kind == phonenumbers.number_type(phonenumbers.parse(fast.e164))


@pytest.mark.parametrize(
    ("raw", "region", "sms"),
    [
        ("07911 123456", "GB", True),
        ("+1 650 253 0000", "GB", True),  # FIXED_LINE_OR_MOBILE
        ("(212) 555-0123", "US", True),
        ("+353 87 123 4567", "GB", True),
        ("020 7946 0018", "GB", False),  # FIXED_LINE
        ("+49 30 12345678", "GB", False),
        ("0800 123 4567", "GB", False),  # TOLL_FREE
        ("0900 123 4567", "GB", False),  # PREMIUM_RATE
        ("0300 123 4567", "GB", False),  # UAN
        ("056 1234 5678", "GB", False),  # VOIP
        ("070 1234 5678", "GB", False),  # PERSONAL_NUMBER
        ("+1 800 555 0123", "GB", False),  # TOLL_FREE
    ],
)
def test_which_numbers_can_receive_sms(raw, region, sms):
    got = PhoneNormaliser(region)(raw)
    assert got.e164 is not None
    assert (phones.sms_refusal(got.kind) is None) is sms
