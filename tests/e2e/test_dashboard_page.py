"""The gateway's dashboard page, loaded in headless Chromium against the real stack on
PostgreSQL (with the projector running): it shows the seeded figures and a case's
timeline. Chromium is Debian's `chromium` package; without it the test skips, except
under CI=true, where it fails."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

CATCH_UP_SECONDS = 30.0
CHROMIUM_SECONDS = 90.0
PHOTO = {
    "kind": "photo",
    "uri": "https://files.example/parcel.jpg",
    "sha256": hashlib.sha256(b"parcel").hexdigest(),
}


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "headless Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run the dashboard page test")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def projected(stack: Stack) -> Iterator[Stack]:
    """The stack with the projector following the event log into the dashboard views."""
    stack.start("projector")
    try:
        yield stack
    finally:
        stack.stop("projector")


class Caller:
    def __init__(self, client: httpx.Client, stack: Stack, role: str, sub: str) -> None:
        self.client, self.id = client, sub
        self.token = stack.token(role, sub)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.client.request(method, path, json=body, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()


def open_dispute(client: httpx.Client, stack: Stack, reason: str, resolution: str) -> Any:
    tag = uuid.uuid4().hex[:8]
    buyer = Caller(client, stack, "buyer", f"buyer-{tag}")
    seller = Caller(client, stack, "seller", f"seller-{tag}")
    logistics = Caller(client, stack, "service", "logistics")
    placed = datetime.now(UTC) - timedelta(days=10)
    logistics.send(
        "PUT",
        f"/v1/orders/ord-{tag}",
        {
            "buyer_id": buyer.id,
            "seller_id": seller.id,
            "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card",
            "placed_at": placed.isoformat(),
        },
        status=201,
    )
    dispute = buyer.send(
        "POST",
        "/v1/disputes",
        {
            "order_id": f"ord-{tag}",
            "reason": reason,
            "requested_resolution": resolution,
            "amount": {"amount": 5000, "currency": "USD"},
            "description": f"{reason}: see the evidence",
            "evidence": [PHOTO],
        },
        status=201,
    )
    return dispute, buyer, seller


def table(dom: str, table_id: str) -> list[list[str]]:
    """The body rows of the table with this id in the dumped DOM, as cell texts."""
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
    assert match, f"no table {table_id} in the page"
    body = match.group(1).split("<tbody>", 1)[1]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def element_text(dom: str, element_id: str) -> str:
    match = re.search(rf'<(\w+) id="{element_id}"[^>]*>(.*?)</\1>', dom, re.S)
    assert match, f"no #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(2)))


def test_the_dashboard_page_shows_the_seeded_figures_and_a_case_timeline(
    chromium: str, projected: Stack, tmp_path: Path
) -> None:
    stack = projected
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        agent = Caller(client, stack, "agent", "agent-1")
        auditor = Caller(client, stack, "auditor", "auditor-1")

        # A seller who stays silent loses by time-out; another case is escalated.
        silent, _, silent_seller = open_dispute(client, stack, "not_received", "refund_only")
        agent.send("POST", "/v1/sandbox/clock", {"advance": "P6D"})
        lapsed = agent.get(f"/v1/disputes/{silent['id']}")
        assert lapsed["state"] == "refund_pending"
        escalated, buyer, seller = open_dispute(client, stack, "damaged", "return_and_refund")
        seller.send(
            "POST",
            f"/v1/disputes/{escalated['id']}/reject",
            {"reason": "it left intact", "evidence": [PHOTO]},
        )
        buyer.send(
            "POST", f"/v1/disputes/{escalated['id']}/escalate", {"reason": "the box was crushed"}
        )

        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            counts = agent.get("/v1/stats/counts")
            by_state = counts["by_state"]
            if by_state.get("refund_pending") == 1 and by_state.get("under_review") == 1:
                break
            assert time.monotonic() < deadline, f"the projector did not catch up: {counts}"
            time.sleep(0.2)
        sellers = agent.get("/v1/stats/sellers")["data"]
        losses = {s["seller_id"]: s["timeout_losses"] for s in sellers}
        assert losses[silent_seller.id] == 1
        history = auditor.get(f"/v1/disputes/{silent['id']}/events")["events"]
        mermaid = agent.get("/v1/state-machine")["mermaid"]

        page = client.get("/dashboard")  # no token needed for the page itself
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "/dashboard" not in client.get("/openapi.json").json()["paths"]

    url = f"{stack.gateway_url}/dashboard#token={auditor.token}&dispute={silent['id']}"
    browser = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_SECONDS,
        check=False,
    )
    assert browser.returncode == 0, browser.stderr[-2000:]
    dom = browser.stdout

    assert 'data-loaded="true"' in dom, element_text(dom, "status")
    assert element_text(dom, "total") == str(counts["total"]) == "2"
    state_rows = {row[0]: row[1] for row in table(dom, "counts")}
    assert state_rows == {"refund_pending": "1", "under_review": "1"}
    assert [silent_seller.id, "1"] == table(dom, "sellers")[0][:2]
    assert mermaid.splitlines()[0] in element_text(dom, "diagram")
    assert table(dom, "deadlines") and table(dom, "breaches")  # rows, or the empty note

    timeline = table(dom, "timeline")
    assert [row[1] for row in timeline] == [event["type"] for event in history]
    assert [row[0] for row in timeline] == [str(event["version"]) for event in history]
    assert timeline[0][3] == f"buyer:{history[0]['actor']['id']}"
    assert any("Opened" in row[1] for row in timeline)
