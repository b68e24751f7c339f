"""Tests for webqq_scrapy.items: the one timestamp format of the records, plain values, and
the Qzone items' fields (a feed's columns), which they inherit from protocol.qzone (the
mutable QzonePost, which FilesPipeline fills, is test_qzone_spiders's picture download)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from webqq_scrapy import items
from webqq_scrapy.items import parse_timestamp, utc_timestamp

MOMENT = datetime(2026, 11, 28, 22, 31, 5, 123456, tzinfo=UTC)


def test_utc_timestamp_is_rfc3339_utc_with_milliseconds():
    assert utc_timestamp(MOMENT) == "2026-11-28T22:31:05.123Z"
    assert utc_timestamp(MOMENT.replace(microsecond=0)) == "2026-11-28T22:31:05.000Z"
    plus_two = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert utc_timestamp(plus_two) == "2026-11-28T22:31:05.123Z"


def test_utc_timestamp_defaults_to_now():
    before = datetime.now(UTC).replace(microsecond=0)
    text = utc_timestamp()
    assert len(text) == len("2026-11-28T22:31:05.123Z")
    assert text.endswith("Z")
    assert before <= parse_timestamp(text) <= datetime.now(UTC)


def test_utc_timestamp_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="time zone"):
        utc_timestamp(datetime(2026, 11, 28, 22, 31, 5))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T22:31:05.123Z", MOMENT.replace(microsecond=123000)),
        # the formats of stores written before 0.2
        ("2026-11-28T22:31:05+00:00", MOMENT.replace(microsecond=0)),
        ("2026-11-28T22:31:05Z", MOMENT.replace(microsecond=0)),
        ("2026-11-28T22:31:05.123+00:00", MOMENT.replace(microsecond=123000)),
        ("2026-11-28T22:31:05.123456+00:00", MOMENT),
        ("2026-11-29T00:31:05.123456+02:00", MOMENT),
        ("2026-11-28T22:31:05", MOMENT.replace(microsecond=0)),  # no offset: UTC
        ("2026-11-28t22:31:05.123z", MOMENT.replace(microsecond=123000)),
        (" 2026-11-28 22:31:05.123Z\n", MOMENT.replace(microsecond=123000)),
    ],
)
def test_parse_timestamp_reads_current_and_older_formats(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["", "soon", "2026-11-28", "2026-11-28T25:00:00Z", "1764369065", None, 1764369065]
)
def test_parse_timestamp_refuses_what_is_not_a_time(value):
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_timestamp(value)


def test_round_trip():
    text = utc_timestamp(MOMENT)
    assert utc_timestamp(parse_timestamp(text)) == text


# The Qzone items' fields as docs/qzone.md lists them, in feed order. They inherit the
# protocol's (protocol.qzone: CommentRecord, QzoneFriend, PostRecord): what the parser only
# notices (a NUL replaced, refused entries, inline comments) must not become a field of the
# record.
QZONE_ITEM_FIELDS = {
    items.QzonePost: "account crawled_at owner tid uin name content text created_time "
    "cmtnum fwdnum pictures file_urls files job record",
    items.QzoneComment: "account crawled_at owner tid comment_id uin name content text "
    "created_time reply_num job record",
    items.QzoneFriend: "account crawled_at uin name remark group online job record",
    items.QzoneOwnerOutcome: "account crawled_at owner outcome posts new_posts new_comments "
    "stopped detail job record",
}


@pytest.mark.parametrize("item", list(QZONE_ITEM_FIELDS))
def test_qzone_item_fields_are_the_records_not_the_parsers(item):
    assert [f.name for f in dataclasses.fields(item)] == QZONE_ITEM_FIELDS[item].split()
    friend = items.QzoneFriend("a", "2026-01-01T00:00:00.000Z", 7, "Bob", "", "", True)
    assert dataclasses.asdict(friend)["record"] == "qzone_friend"
