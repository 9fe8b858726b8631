"""`python -m services.client`, the README's HTTP helper: its refusals before sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.client import ago, main
from services.stack import free_port


def test_ago_prints_rfc3339_utc_and_with_day_that_days_midnight() -> None:
    day = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
    assert ago("P20D", day=True) == f"{day}T00:00:00Z"
    assert ago("PT0S").endswith("Z") and len(ago("PT0S")) == 20


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["ago", "twenty days"], "not an ISO 8601 duration"),
        (["POST", "/v1/disputes", "{not json"], "the body is not JSON"),
        (["GET", "/v1/disputes", "-H", "no colon"], "a header is 'Name: value'"),
        (["GET", "/v1/disputes", "--api", f"http://127.0.0.1:{free_port()}"], "cannot reach"),
    ],
)
def test_bad_arguments_and_an_unreachable_gateway_exit_2_saying_why(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert says in capsys.readouterr().err
