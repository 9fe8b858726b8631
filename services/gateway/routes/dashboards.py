"""For dashboards: the lifecycle as data, and the stats figures (served from projections)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import Query

from shared import contract

from .common import COMMON_PROBLEMS, READ_PROBLEMS, RequestId, forwarding_router, roles

router = forwarding_router()


@router.get(
    "/v1/state-machine",
    tags=["meta"],
    summary="The states, actions, transitions and a Mermaid diagram",
    response_model=contract.StateMachine,
    responses=COMMON_PROBLEMS,
)
def state_machine(request_id: RequestId = None) -> Any: ...


_LAG = (
    " Every answer carries `lag`: how far behind the event log (events, seconds) the projection is."
)
SELLERS = "/v1/stats/sellers"


@router.get(
    SELLERS,
    tags=["stats"],
    summary=f"Per seller: disputes, outcomes, refund rate, response time ({roles('GET', SELLERS)})",
    description="From the dashboard projection; with registered orders, the dispute rate "
    "and the mix of reasons." + _LAG,
    response_model=contract.SellerStatsList,
    responses=READ_PROBLEMS,
)
def seller_stats(
    seller_id: Annotated[contract.Id | None, Query(description="only this seller")] = None,
    request_id: RequestId = None,
) -> Any: ...


def _deadline_figure(path: str, summary: str) -> None:
    def figure(request_id: RequestId = None) -> Any: ...

    figure.__name__ = "stats_" + path.rsplit("/", 1)[-1].replace("-", "_")
    router.add_api_route(
        path,
        figure,
        methods=["GET"],
        tags=["stats"],
        summary=summary,
        description="From the dashboard projection." + _LAG,
        response_model=contract.DeadlineList,
        responses=READ_PROBLEMS,
    )


_deadline_figure("/v1/stats/deadlines-due", "Deadlines due in the next 24 h of the service clock")
_deadline_figure(
    "/v1/stats/sla-breaches", "Reviews and appeals past their ruling SLA (SLA breaches)"
)
_deadline_figure("/v1/stats/payouts-overdue", "Refunds not paid by their expected date")


@router.get(
    "/v1/stats/daily",
    tags=["stats"],
    summary="Per UTC day: opened by reason, entering each state, closed by outcome",
    description=f"At most {contract.DAILY_DAYS_MAX} days at a time; days with anything only."
    + _LAG,
    response_model=contract.DailyCounts,
    responses=READ_PROBLEMS,
)
def daily_stats(
    from_: Annotated[
        contract.Day | None,
        Query(alias="from", description="first UTC day (default: 29 days before to)"),
    ] = None,
    to: Annotated[contract.Day | None, Query(description="last UTC day (default: today)")] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    "/v1/stats/counts",
    tags=["stats"],
    summary="Disputes by state and by outcome",
    description="From the dashboard projection." + _LAG,
    response_model=contract.DisputeCounts,
    responses=READ_PROBLEMS,
)
def count_stats(request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/stats/appeals",
    tags=["stats"],
    summary="Appeals filed, and how often they overturn the first ruling",
    description="From the dashboard projection." + _LAG,
    response_model=contract.AppealFigures,
    responses=READ_PROBLEMS,
)
def appeal_stats(request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/stats/chargebacks",
    tags=["stats"],
    summary="Chargebacks, the disputes they closed, double recoveries and the amount at risk",
    description="From the dashboard projection." + _LAG,
    response_model=contract.ChargebackFigures,
    responses=READ_PROBLEMS,
)
def chargeback_stats(request_id: RequestId = None) -> Any: ...
