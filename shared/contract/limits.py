"""Limits at the door, and the id, text, time and parameter types that carry them.

Each limit with its reason (the README's "Limits" lists them too). Requests check types,
shapes and these limits before anything else, so that nothing the service cannot store,
show or compute with gets in, and every limit shows in the OpenAPI document. Both tiers
declare their path and query parameters with the types below, so a limit is written once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StrictStr
from pydantic_core import PydanticCustomError

# Ids (order ids, buyer and seller ids, dispute ids in paths, filters): travel in URLs,
# headers (Location), logs and text columns, so a safe printable ASCII set: letters,
# digits and . _ : @ -, starting with a letter or digit (so never "." or ".."), 1 to 128
# characters (a UUID is 36; marketplace ids are shorter).
ID_MAX = 128
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# Free text may hold line breaks and tabs, never another control character (PostgreSQL
# refuses NUL; the others corrupt logs and screens). One-line text holds none at all.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F]*$"
LONG_TEXT_MAX = 4000  # descriptions, messages, rationales: a long letter, not a file
REASON_TEXT_MAX = 1000  # why a party rejects, escalates, withdraws...
LINE_MAX = 200  # carriers, tracking numbers, payment references
# Money: at most 10^11 minor units (a billion dollars), far above any order and far
# below 2^53 (the largest integer a JSON client in JavaScript reads exactly) and
# PostgreSQL's bigint, even summed over every dispute in the stats.
MAX_AMOUNT = 100_000_000_000
# Times: 2000-01-01 to 2100-01-01 (UTC). Every deadline and protection end is such a
# time plus at most a few hundred days, so no date arithmetic can leave year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIME_RANGE = "2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z"
MAX_EVIDENCE = 20  # evidence items per request
# A sandbox clock move: days, hours, minutes, seconds in ISO 8601 (P5D, PT12H, P1DT2H);
# the service also keeps the clock before LATEST.
SANDBOX_ADVANCE_MAX_DAYS = 9999
_CLOCK = (
    "T(?:[0-9]{1,6}H(?:[0-9]{1,8}M)?(?:[0-9]{1,10}S)?|[0-9]{1,8}M(?:[0-9]{1,10}S)?|[0-9]{1,10}S)"
)
SANDBOX_ADVANCE_PATTERN = rf"^P(?:[0-9]{{1,4}}D(?:{_CLOCK})?|{_CLOCK})$"
EVIDENCE_URI_MAX = 2048
EXTENSION_DAYS_MAX = 365
CURSOR_MAX = 512
VERSION_MAX = 1_000_000  # events of one dispute; far beyond any real history
POSITION_MAX = 2**63 - 1  # the event log's position is a bigint

# Query parameters: page sizes, and the largest numbers a position or a version can be.
LIST_LIMIT_MAX = 200  # disputes per page of GET /v1/disputes
LIST_LIMIT_DEFAULT = 50
FEED_LIMIT_MAX = 1000  # events per page of the feed
FEED_LIMIT_DEFAULT = 100
DELIVERIES_LIMIT_MAX = 500  # delivery attempts per page of a webhook's log
DELIVERIES_LIMIT_DEFAULT = 50
TREE_SIZE_MAX = 2**62  # events in the Merkle log: far beyond any real log
LOG_VERSION_MAX = 2**31 - 1  # an aggregate's version as the Merkle log's leaves hold it
AGGREGATE_ID_MAX = 64  # a dispute's UUID or an order's id as the Merkle log names it
DAILY_DAYS_MAX = 366  # days of GET /v1/stats/daily at a time: a leap year
# Request headers: an Idempotency-Key is 1 to 255 printable ASCII characters without
# spaces; If-Match is an ETag (a version, quoted or not, weak or not) or *.
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7E]{1,255}$"
IF_MATCH_PATTERN = r'^(\*|(W/)?"?[0-9]{1,18}"?)$'


def _day_in_range(value: date) -> date:
    if not EARLIEST.date() <= value <= LATEST.date():
        raise PydanticCustomError("time_range", "must lie in {range}", {"range": TIME_RANGE})
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError("time_range", "must lie in {range}", {"range": TIME_RANGE})
    return value


Id = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=ID_MAX,
        pattern=ID_PATTERN,
        description="1 to 128 of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit",
    ),
]
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN),
]
ReasonText = Annotated[
    StrictStr,
    Field(min_length=1, max_length=REASON_TEXT_MAX, pattern=TEXT_PATTERN),
]
Line = Annotated[
    StrictStr,
    Field(min_length=1, max_length=LINE_MAX, pattern=LINE_PATTERN),
]
Cursor = Annotated[
    StrictStr, Field(min_length=1, max_length=CURSOR_MAX, pattern=r"^[A-Za-z0-9_-]+$")
]
Day = Annotated[
    date,
    AfterValidator(_day_in_range),
    Field(description="a UTC day, YYYY-MM-DD, 2000-01-01 to 2100-01-01"),
]
Time = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(description=f"RFC 3339 with a zone, {TIME_RANGE}"),
]


# Query parameters (each tier adds its own description and default).
ListLimit = Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX)]
FeedLimit = Annotated[int, Field(ge=1, le=FEED_LIMIT_MAX)]
DeliveriesLimit = Annotated[int, Field(ge=1, le=DELIVERIES_LIMIT_MAX)]
DisputeVersion = Annotated[int, Field(ge=1, le=VERSION_MAX)]
FeedPosition = Annotated[int, Field(ge=0, le=POSITION_MAX)]  # `after`: 0 is the start
PageBefore = Annotated[int, Field(ge=1, le=POSITION_MAX)]  # `before`: a position or an id
TreeSize = Annotated[int, Field(ge=1, le=TREE_SIZE_MAX)]
LogVersion = Annotated[int, Field(ge=1, le=LOG_VERSION_MAX)]
AggregateId = Annotated[str, Field(max_length=AGGREGATE_ID_MAX)]
