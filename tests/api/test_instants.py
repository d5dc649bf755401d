"""Every moment the service accepts exists in UTC and lies in the calendar it stores.

A datetime with an offset passes RFC 3339 and pydantic's ``AwareDatetime``, yet
``0001-01-01T00:00:00+14:00`` has no UTC equivalent and ``9999-12-31T23:59:59-14:00`` runs
past the year 9999: converting either used to fail deep in the database layer with a 500.
``Instant`` accepts RFC 3339 with its offset and a year from 1901 to 2099, and converts at
the edge: any input is either the same moment as sent, in UTC and inside the calendar the
service stores, or a validation error naming the field (a 422), never anything else.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.api.schemas import Instant

_INSTANT = TypeAdapter(Instant)
_FIRST = datetime(1900, 12, 31, tzinfo=UTC)
_LAST = datetime(2100, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moment=st.datetimes(), offset=offsets)
@settings(max_examples=300)
def test_an_accepted_moment_is_the_same_moment_in_utc_or_a_validation_error(
    moment: datetime, offset: timezone
) -> None:
    sent = moment.replace(tzinfo=offset).isoformat()
    try:
        kept = _INSTANT.validate_python(sent)
    except ValidationError:
        return
    assert kept.tzinfo is UTC
    assert _FIRST <= kept <= _LAST
    assert kept == datetime.fromisoformat(sent)


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_the_calendar_ends_are_refused_with_a_reason(edge: str) -> None:
    with pytest.raises(ValidationError, match="from 1901 to 2099"):
        _INSTANT.validate_python(edge)


@pytest.mark.parametrize("sent", [1764000000, "2026-11-24 10:05:31Z", "2026-11-24T10:05:31"])
def test_only_an_rfc3339_string_with_an_offset_is_a_moment(sent: object) -> None:
    with pytest.raises(ValidationError):
        _INSTANT.validate_python(sent)


@given(
    # Naive bounds for the strategy; each example is given an offset below.
    moment=st.datetimes(
        min_value=datetime(1901, 1, 1),  # noqa: DTZ001
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    ),
    offset=offsets,
)
def test_every_moment_from_1901_to_2099_is_accepted_as_the_same_moment(
    moment: datetime, offset: timezone
) -> None:
    sent = moment.replace(tzinfo=offset).isoformat()
    assert _INSTANT.validate_python(sent) == datetime.fromisoformat(sent)


@pytest.mark.parametrize(
    "sent",
    [
        "2026-11-24T10:05:31.1234567Z",  # seven digits, .NET's round-trip format
        "2026-11-24T10:05:31.123456789+01:00",  # nine, as FHIR instants may carry
        "2026-11-24t10:05:31z",  # RFC 3339 allows lower case
    ],
)
def test_rfc3339_forms_other_systems_send_are_accepted(sent: str) -> None:
    assert _INSTANT.validate_python(sent).tzinfo is UTC
