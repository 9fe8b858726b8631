"""The gateway's dashboard in headless Chromium against the real stack on PostgreSQL (the
projector running), seeded through the public API: sign in once per session, the
overview's figures and charts, the filterable list of disputes, a case page with its
lifecycle drawn as SVG and the current state highlighted, the seller scorecard. Every
view is screenshotted into tests/artifacts/ (kept by CI). The page runs under its strict
Content-Security-Policy without a violation or a script error.

Chromium is Debian's `chromium` package; without it the test skips, except under
CI=true, where it fails."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .browser import ARTIFACTS, Page, browser, chromium_path
from .stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

CATCH_UP_SECONDS = 30.0
ON_PAGE = "document.getElementById('page-label').textContent.startsWith('page {}')"
PHOTO = {
    "kind": "photo",
    "uri": "https://files.example/parcel.jpg",
    "sha256": hashlib.sha256(b"parcel").hexdigest(),
}


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


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


def seed(stack: Stack) -> dict[str, Any]:
    """Four disputes: one lost by a silent seller (time-out), one escalated to review,
    one withdrawn (closed), one refunded in full (closed); then the clock moves ten days,
    so the review is past its SLA; the projector caught up."""
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        agent = Caller(client, stack, "agent", "agent-1")
        auditor = Caller(client, stack, "auditor", "auditor-1")
        payments = Caller(client, stack, "service", "payments")
        silent, _, silent_seller = open_dispute(client, stack, "not_received", "refund_only")
        agent.send("POST", "/v1/sandbox/clock", {"advance": "P6D"})
        assert agent.get(f"/v1/disputes/{silent['id']}")["state"] == "refund_pending"
        escalated, buyer, seller = open_dispute(client, stack, "damaged", "return_and_refund")
        seller.send("POST", f"/v1/disputes/{escalated['id']}/reject",
                    {"reason": "it left intact", "evidence": [PHOTO]})  # fmt: skip
        buyer.send("POST", f"/v1/disputes/{escalated['id']}/escalate", {"reason": "crushed box"})
        withdrawn, buyer2, _ = open_dispute(client, stack, "wrong_item", "refund_only")
        buyer2.send("POST", f"/v1/disputes/{withdrawn['id']}/withdraw", {"reason": "it came"})
        refunded, _, seller3 = open_dispute(client, stack, "missing_parts", "refund_only")
        seller3.send("POST", f"/v1/disputes/{refunded['id']}/accept")
        payments.send("POST", f"/v1/disputes/{refunded['id']}/refund-paid",
                      {"reference": "pay-1", "paid_at": datetime.now(UTC).isoformat()})  # fmt: skip
        # ten days on, the escalated review is past its SLA (7 business days)
        agent.send("POST", "/v1/sandbox/clock", {"advance": "P10D"})
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            counts = agent.get("/v1/stats/counts")
            if counts["total"] == 4 and counts["lag"]["events"] == 0:
                break
            assert time.monotonic() < deadline, f"the projector did not catch up: {counts}"
            time.sleep(0.2)
        breaches = agent.get("/v1/stats/sla-breaches")["data"]
        assert [b["dispute_id"] for b in breaches] == [escalated["id"]]
        return {
            "counts": counts,
            "silent": silent,
            "silent_seller": silent_seller.id,
            "escalated": escalated,
            "history": auditor.get(f"/v1/disputes/{silent['id']}/events")["events"],
            "machine": agent.get("/v1/state-machine"),
            "daily": agent.get("/v1/stats/daily")["data"],
            "breaches": breaches,
            "agent_token": agent.token,
            "page": client.get("/dashboard"),
        }


async def loaded(page: Page, view: str) -> None:
    await page.wait_for(
        f"document.body.dataset.view === {view!r} && document.body.dataset.loaded === 'true'"
    )


async def rows(page: Page, table: str) -> list[list[str]]:
    value: list[list[str]] = await page.evaluate(
        f"[...document.querySelectorAll('#{table} tbody tr:not(.empty)')]"
        ".map((tr) => [...tr.cells].map((td) => td.textContent))"
    )
    return value


async def drive(chromium: str, stack: Stack, seeded: dict[str, Any], profile: Path) -> None:
    url = f"{stack.gateway_url}/dashboard"
    async with browser(chromium, profile) as page:
        await page.go(url)
        await page.wait_for("document.body.dataset.view === 'sign-in'")
        signed_out = "getComputedStyle(document.getElementById('session')).display"
        assert await page.evaluate(signed_out) == "none"  # no "Sign out" before signing in
        # The token is typed once; it lives in sessionStorage and never in the address.
        await page.type_into("#token", seeded["agent_token"])
        await page.evaluate("document.querySelector('#token-form button').click()")
        await loaded(page, "overview")
        assert await page.evaluate("sessionStorage.length") == 1
        assert seeded["agent_token"] not in await page.evaluate("location.href")
        assert await page.evaluate("document.getElementById('total').textContent") == "4"
        # charts: a bar for each day's openings and closings by outcome (days of the
        # service's clock, which the sandbox moved), a refund-rate point for each day with
        # closings
        expected = {
            (series, day["day"])
            for day in seeded["daily"]
            for series, n in [("opened", sum(day["opened"].values())), *day["closed"].items()]
            if n
        }
        assert {s for s, _ in expected} == {"opened", "withdrawn", "refunded_full"}
        drawn = await page.evaluate(
            "[...document.querySelectorAll('#chart-daily svg rect[data-series]')]"
            ".map((r) => [r.dataset.series, r.dataset.day])"
        )
        assert {tuple(pair) for pair in drawn} == expected
        closing_days = {day for series, day in expected if series != "opened"}
        points = await page.evaluate(
            "[...document.querySelectorAll('#chart-refund-rate circle')].map((c) => c.dataset.day)"
        )
        assert set(points) == closing_days
        assert await page.evaluate("document.querySelectorAll('#chart-states svg rect').length")
        lapsed = seeded["breaches"][0]["due_at"][:10]
        assert await page.evaluate(
            "[...document.querySelectorAll('#chart-breaches svg rect[data-series]')]"
            ".map((r) => r.dataset.day)"
        ) == [lapsed]
        assert await page.evaluate("document.getElementById('breach-count').textContent") == "1"
        await page.screenshot("dashboard-overview")

        # A reload keeps the session: no second sign-in.
        await page.send("Page.reload")
        await loaded(page, "overview")

        await page.evaluate("location.hash = '#/disputes'")
        await loaded(page, "disputes")
        listed = await rows(page, "disputes")
        assert len(listed) == 4
        assert {row[1] for row in listed} == {"refund_pending", "under_review", "closed"}
        assert {"not_received", "damaged", "wrong_item", "missing_parts"} == {r[2] for r in listed}
        await page.screenshot("dashboard-disputes")
        # pages of two: newest first, by cursor, and back
        await page.evaluate("location.hash = '#/disputes?limit=2'")
        await page.wait_for(ON_PAGE.format(1))
        await loaded(page, "disputes")
        first = await rows(page, "disputes")
        await page.evaluate("document.getElementById('page-next').click()")
        await page.wait_for(ON_PAGE.format(2))
        await loaded(page, "disputes")
        second = await rows(page, "disputes")
        assert len(first) == len(second) == 2
        assert {r[0] for r in first + second} == {r[0] for r in listed}
        assert await page.evaluate("document.getElementById('page-next').disabled")
        await page.evaluate("document.getElementById('page-prev').click()")
        await page.wait_for(ON_PAGE.format(1))
        await loaded(page, "disputes")
        assert await rows(page, "disputes") == first
        # the filter form: state under_review leaves the escalated case only
        await page.evaluate(
            "document.getElementById('filter-state').value = 'under_review';"
            "document.querySelector('#filters button[type=submit]').click()"
        )
        await page.wait_for("location.hash.includes('state=under_review')")
        await loaded(page, "disputes")
        filtered = await rows(page, "disputes")
        assert [row[0] for row in filtered] == [seeded["escalated"]["id"][:8]]
        assert filtered[0][7].startswith("ruling")  # the next deadline: the agent's ruling

        silent = seeded["silent"]["id"]
        await page.evaluate(f"location.hash = '#/case/{silent}'")
        await loaded(page, "case")
        machine = seeded["machine"]
        nodes = await page.evaluate(
            "[...document.querySelectorAll('#diagram svg g.node')].map((g) => g.dataset.state)"
        )
        assert sorted(nodes) == sorted(machine["states"])
        assert (
            await page.evaluate(
                "document.querySelector('#diagram svg g.node.current').dataset.state"
            )
            == "refund_pending"
        )
        assert await page.evaluate(
            "document.querySelector('#diagram svg g.node[data-state=awaiting_seller]')"
            ".classList.contains('visited')"
        )
        assert await page.evaluate("document.querySelectorAll('#diagram svg path.edge').length")
        timeline = await rows(page, "timeline")
        history = seeded["history"]
        assert [row[1] for row in timeline] == [event["type"] for event in history]
        assert timeline[0][3] == f"buyer:{history[0]['actor']['id']}"
        assert await page.evaluate("document.getElementById('case-verification').textContent")
        assert (
            await page.evaluate("document.getElementById('case-verification').textContent")
        ).startswith("intact")
        assert await page.evaluate("document.getElementById('case-recommendation').textContent")
        await page.screenshot("dashboard-case")

        await page.evaluate("location.hash = '#/sellers'")
        await loaded(page, "sellers")
        sellers = {row[0]: row for row in await rows(page, "sellers")}
        silent_seller = sellers[seeded["silent_seller"]]
        assert silent_seller[1:4] == ["1", "1", "100%"]  # orders, disputes, dispute rate
        assert silent_seller[7] == "1"  # its time-out loss
        await page.screenshot("dashboard-sellers")

        assert await page.evaluate("window.__csp") == []
        assert page.exceptions == [] and page.console_errors == []

        # Signing out forgets the token.
        await page.evaluate("document.getElementById('sign-out').click()")
        await page.wait_for("document.body.dataset.view === 'sign-in'")
        assert await page.evaluate("sessionStorage.length") == 0
        assert await page.evaluate(signed_out) == "none"


@pytest.fixture(scope="module")
def seeded(projected: Stack) -> dict[str, Any]:
    return seed(projected)


def test_the_dashboard_lists_charts_and_draws_a_case_in_chromium(
    chromium: str, projected: Stack, seeded: dict[str, Any], tmp_path: Path
) -> None:
    page = seeded["page"]  # no token needed for the page itself
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    asyncio.run(drive(chromium, projected, seeded, tmp_path / "chromium"))
    shots = sorted(p.name for p in ARTIFACTS.glob("dashboard-*.png"))
    assert shots == [
        "dashboard-case.png",
        "dashboard-disputes.png",
        "dashboard-overview.png",
        "dashboard-sellers.png",
    ]


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_worker_and_the_projector_serve_their_metrics(
    projected: Stack, seeded: dict[str, Any]
) -> None:
    worker = f"http://127.0.0.1:{projected.worker_metrics_port}"
    projector = f"http://127.0.0.1:{projected.projector_metrics_port}"
    # the silent seller's time-out: fired by the worker, or by the sandbox clock's move
    fired = [scrape(u)["disputes_timeouts_fired_total"] for u in (worker, projected.service_url)]
    assert sum(fired) >= 1
    deadline = time.monotonic() + CATCH_UP_SECONDS  # sampled every 2 s
    while True:
        figures = scrape(projector)
        by_state = {
            state: figures.get(f'disputes_disputes{{state="{state}"}}')
            for state in seeded["machine"]["states"]
        }
        # One sample reads the lag before the counts, so a batch applied between the two
        # shows the counts caught up and the lag not yet: wait for both.
        if by_state.get("closed") == 2 and figures["disputes_projector_lag_events"] == 0:
            break
        assert time.monotonic() < deadline, figures
        time.sleep(0.5)
    assert by_state == {
        state: float(seeded["counts"]["by_state"].get(state, 0))
        for state in seeded["machine"]["states"]
    }
    assert "disputes_deadline_worker_lag_seconds" in scrape(worker)
    gateway = scrape(projected.gateway_url)
    # One route per figure at the gateway, so the label names the figure.
    assert gateway['disputes_http_requests_total{method="GET",route="/v1/stats/counts",'
                   'status="200",tier="gateway"}'] >= 1  # fmt: skip
