"""`GET /v1/disputes` and `/v1/stats/...`: the dashboard projections over HTTP.

Every answer is read from the views the projector keeps (services.dispute.projections),
not from the event store, so it lags the writes until the projector has caught up;
each answer says by how much in `lag` (events and seconds of event time).
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameters.

import threading
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.dispute.application import DisputeApplication
from services.dispute.domain import Actor, InvalidInput
from services.dispute.projections import DashboardQueries
from services.dispute.projections.queries import MAX_LIMIT
from shared import contract

from . import representations
from .dependencies import ActorDep, AppDep
from .idempotency import to_response
from .routes import PROBLEMS

dashboard = APIRouter(prefix="/v1")

DEADLINE_WINDOW = timedelta(hours=24)
DEFAULT_DAYS = 30
MAX_DAYS = 366
_lock = threading.Lock()


def get_queries(request: Request, application: AppDep) -> DashboardQueries:
    """The app's DashboardQueries, made (and its tables created) once, on first use."""
    queries: DashboardQueries | None = getattr(request.app.state, "dashboard", None)
    if queries is None or queries.app is not application:
        with _lock:
            queries = getattr(request.app.state, "dashboard", None)
            if queries is None or queries.app is not application:
                queries = DashboardQueries(application)
                request.app.state.dashboard = queries
    return queries


QueriesDep = Annotated[DashboardQueries, Depends(get_queries)]


async def stats_viewer(actor: ActorDep) -> Actor:
    """Who reads the figures: the permission table's `/v1/stats/{figure}` roles, checked
    when the caller is authenticated."""
    return actor


StatsViewer = Annotated[Actor, Depends(stats_viewer)]


def lag_of(queries: DashboardQueries) -> contract.Lag:
    lag = queries.lag()
    return contract.Lag(events=int(lag["events_behind"]), seconds=float(lag["seconds_behind"]))


def _money(amount: int | None, currency: str) -> contract.Money | None:
    return None if amount is None else contract.Money(amount=int(amount), currency=currency)


def summary_view(row: dict[str, Any]) -> contract.DisputeSummary:
    currency = row["currency"]
    next_deadline = (
        contract.NextDeadline(kind=row["next_deadline_kind"], due_at=row["next_deadline_at"])
        if row["next_deadline_at"] is not None
        else None
    )
    return contract.DisputeSummary(
        id=row["dispute_id"],
        order_id=row["order_ref"],
        buyer_id=row["buyer_id"],
        seller_id=row["seller_id"],
        reason=row["reason"],
        state=row["state"],
        amount=contract.Money(amount=int(row["requested_amount"]), currency=currency),
        version=int(row["version"]),
        opened_at=row["opened_at"],
        next_deadline=next_deadline,
        outcome=row["outcome"],
        closed_at=row["closed_at"],
        refund=_money(row["refund_amount"], currency),
    )


def deadline_view(row: dict[str, Any]) -> contract.DeadlineEntry:
    currency = row["currency"]
    return contract.DeadlineEntry(
        dispute_id=row["dispute_id"],
        kind=row["kind"],
        due_from=row["due_from"],
        due_at=row["due_at"],
        state=row["state"],
        reason=row["reason"],
        buyer_id=row["buyer_id"],
        seller_id=row["seller_id"],
        opened_at=row["opened_at"],
        escalated_at=row["escalated_at"],
        amount=contract.Money(amount=int(row["order_amount"]), currency=currency),
        refund=_money(row["refund_amount"], currency),
        refund_failures=int(row["refund_failures"] or 0),
    )


def reply(model: Any) -> Response:
    return to_response(representations.json_reply(model))


# GET /v1/disputes --------------------------------------------------------------------


@dashboard.get(
    "/disputes", response_model=contract.DisputeList, responses=PROBLEMS, tags=["disputes"]
)
def list_disputes(
    queries: QueriesDep,
    actor: ActorDep,
    state: Annotated[contract.State | None, Query()] = None,
    reason: Annotated[contract.ReasonName | None, Query()] = None,
    seller_id: Annotated[contract.Id | None, Query()] = None,
    buyer_id: Annotated[contract.Id | None, Query()] = None,
    opened_after: Annotated[
        contract.Time | None, Query(description="opened at or after this time")
    ] = None,
    opened_before: Annotated[
        contract.Time | None, Query(description="opened before this time")
    ] = None,
    deadline_before: Annotated[
        contract.Time | None, Query(description="the next deadline falls before this time")
    ] = None,
    cursor: Annotated[
        contract.Cursor | None, Query(description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Response:
    """Disputes newest first, a page at a time; a buyer or seller sees only its own.

    Served from the dashboard projection: a write shows here once the projector has
    processed it; `lag` says how many events (and seconds) the list is behind.
    """
    if opened_after is not None and opened_before is not None and opened_before < opened_after:
        raise InvalidInput("opened_before", "after_start", "opened_before is before opened_after")
    filters = {
        "state": state,
        "reason": reason,
        "seller_id": seller_id,
        "buyer_id": buyer_id,
        "opened_from": opened_after,
        "opened_to": opened_before,
        "next_deadline_before": deadline_before,
    }
    lag = lag_of(queries)  # taken first: errs on the side of "further behind"
    page = queries.list_disputes(filters, cursor, limit, viewer=actor)
    return reply(
        contract.DisputeList(
            data=[summary_view(row) for row in page.items],
            next_cursor=page.next_cursor,
            lag=lag,
        )
    )


# GET /v1/stats/... (agent, auditor, service) -------------------------------------------


@dashboard.get(
    "/stats/sellers", response_model=contract.SellerStatsList, responses=PROBLEMS, tags=["stats"]
)
def seller_stats(
    queries: QueriesDep,
    _viewer: StatsViewer,
    seller_id: Annotated[contract.Id | None, Query()] = None,
) -> Response:
    """Per seller: disputes, open and closed, by reason, time-out losses, refund rate,
    amounts refunded, the median time to the seller's first answer, and the orders
    registered with the dispute rate (disputes per registered order) and the mix of
    reasons (each reason's share): sellers with orders and no dispute are listed too."""
    figures = queries.seller_figures(seller_id or None)
    data = [
        contract.SellerStats(
            **{
                **f.as_dict(),
                "amount_refunded": [
                    contract.Money(amount=amount, currency=currency)
                    for currency, amount in f.amount_refunded.items()
                ],
            }
        )
        for f in figures
    ]
    return reply(contract.SellerStatsList(data=data, lag=lag_of(queries)))


@dashboard.get(
    "/stats/deadlines-due",
    response_model=contract.DeadlineList,
    responses=PROBLEMS,
    tags=["stats"],
)
def deadlines_due(queries: QueriesDep, application: AppDep, _viewer: StatsViewer) -> Response:
    """Pending deadlines falling due in the next 24 hours of the service's clock."""
    now = _now(application)
    rows = queries.deadlines_due(now, DEADLINE_WINDOW)
    return reply(
        contract.DeadlineList(
            as_of=now,
            until=now + DEADLINE_WINDOW,
            data=[deadline_view(r) for r in rows],
            lag=lag_of(queries),
        )
    )


@dashboard.get(
    "/stats/sla-breaches", response_model=contract.DeadlineList, responses=PROBLEMS, tags=["stats"]
)
def sla_breaches(queries: QueriesDep, application: AppDep, _viewer: StatsViewer) -> Response:
    """Reviews and appeals whose ruling is past its SLA (7 business days from the
    escalation or the appeal; deadline kinds `ruling` and `appeal_ruling`)."""
    now = _now(application)
    rows = queries.sla_breaches(now)
    return reply(
        contract.DeadlineList(as_of=now, data=[deadline_view(r) for r in rows], lag=lag_of(queries))
    )


@dashboard.get(
    "/stats/payouts-overdue",
    response_model=contract.DeadlineList,
    responses=PROBLEMS,
    tags=["stats"],
)
def payouts_overdue(queries: QueriesDep, application: AppDep, _viewer: StatsViewer) -> Response:
    """Refunds still pending after their expected payout date."""
    now = _now(application)
    rows = queries.payouts_overdue(now)
    return reply(
        contract.DeadlineList(as_of=now, data=[deadline_view(r) for r in rows], lag=lag_of(queries))
    )


@dashboard.get(
    "/stats/daily", response_model=contract.DailyCounts, responses=PROBLEMS, tags=["stats"]
)
def daily(
    queries: QueriesDep,
    application: AppDep,
    _viewer: StatsViewer,
    from_: Annotated[
        contract.Day | None,
        Query(alias="from", description="first UTC day (default: 29 days before to)"),
    ] = None,
    to: Annotated[contract.Day | None, Query(description="last UTC day (default: today)")] = None,
) -> Response:
    """Per UTC day, days with anything only: disputes opened (by reason), entering each
    state, and closed (by outcome)."""
    last = to or _now(application).date()
    first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("from", "not_after_to", "from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput("from", "range", f"at most {MAX_DAYS} days at a time")
    rows = queries.daily_counts(first, last)
    return reply(
        contract.DailyCounts(
            **{"from": first.isoformat()},
            to=last.isoformat(),
            data=[contract.DailyCount(**row) for row in rows],
            lag=lag_of(queries),
        )
    )


@dashboard.get(
    "/stats/counts", response_model=contract.DisputeCounts, responses=PROBLEMS, tags=["stats"]
)
def counts(queries: QueriesDep, _viewer: StatsViewer) -> Response:
    """Disputes by state, and closed disputes by outcome."""
    by_state = queries.counts_by_state()
    return reply(
        contract.DisputeCounts(
            total=sum(by_state.values()),
            by_state=by_state,
            by_outcome=queries.counts_by_outcome(),
            lag=lag_of(queries),
        )
    )


@dashboard.get(
    "/stats/appeals", response_model=contract.AppealFigures, responses=PROBLEMS, tags=["stats"]
)
def appeals(queries: QueriesDep, _viewer: StatsViewer) -> Response:
    """Rulings made with an appeal window, appeals filed (by buyers, by sellers), pending
    and decided, and how often the appeal overturned the first ruling."""
    lag = lag_of(queries)
    figures = queries.appeal_figures()
    return reply(contract.AppealFigures(**figures.as_dict(), lag=lag))


@dashboard.get(
    "/stats/chargebacks",
    response_model=contract.ChargebackFigures,
    responses=PROBLEMS,
    tags=["stats"],
)
def chargebacks(queries: QueriesDep, _viewer: StatsViewer) -> Response:
    """Chargebacks reported, the open disputes they closed, those on orders without a
    dispute, and the double recoveries (a refund was already paid) with the amount at
    risk, the newest 100 listed."""
    lag = lag_of(queries)
    f = queries.chargeback_figures()
    return reply(
        contract.ChargebackFigures(
            chargebacks=f.chargebacks,
            disputes_closed=f.disputes_closed,
            without_dispute=f.without_dispute,
            double_recoveries=f.double_recoveries,
            amount=[contract.Money(amount=a, currency=c) for c, a in f.amount.items()],
            amount_at_risk=[
                contract.Money(amount=a, currency=c) for c, a in f.amount_at_risk.items()
            ],
            data=[
                contract.DoubleRecovery(
                    order_id=row["order_ref"],
                    reference=row["reference"],
                    dispute_id=row["dispute_id"],
                    seller_id=row["seller_id"],
                    buyer_id=row["buyer_id"],
                    amount=contract.Money(amount=row["amount"], currency=row["currency"]),
                    amount_at_risk=contract.Money(
                        amount=row["amount_at_risk"] or 0, currency=row["currency"]
                    ),
                    opened_at=row["opened_at"],
                    recorded_at=row["recorded_at"],
                )
                for row in f.double_recovery_rows
            ],
            lag=lag,
        )
    )


def _now(application: DisputeApplication) -> Any:
    return application.clock.now()
