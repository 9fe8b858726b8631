"""Dashboard projections: views of the dispute events, kept by their own process.

- `read_models`: the tables (one row per dispute, pending deadlines, daily counts), each with
  its tracking position written in the same transaction as its rows;
- `projector`: follows the event log into the views, and rebuilds them from zero;
- `queries`: what the REST layer and dashboards ask (`DashboardQueries`).

Run the projector with `python -m services.dispute.projections`; rebuild with
`python -m services.dispute.projections rebuild [--view summary|daily]`.
"""

from .projector import Projector, RebuildReport, views_of
from .queries import DashboardQueries, DisputeFilters, DisputePage, SellerFigures
from .read_models import VIEW_NAMES, DashboardView, PositionMoved, construct_views

__all__ = [
    "VIEW_NAMES",
    "DashboardQueries",
    "DashboardView",
    "DisputeFilters",
    "DisputePage",
    "PositionMoved",
    "Projector",
    "RebuildReport",
    "SellerFigures",
    "construct_views",
    "views_of",
]
