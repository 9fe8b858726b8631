"""The application layer: commands and queries over the Order and Dispute aggregates.

Each command loads, calls one domain method, and saves. The time comes from the injected
clock. Storage errors are translated here into domain errors, so callers see one
hierarchy. Persistence (SQLite or PostgreSQL) is chosen by the eventsourcing environment
the caller passes (see `settings.Settings.persistence_env`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from shared.clock import Clock, SystemClock
from shared.money import Money
from shared.trace_context import current_traceparent

from .domain import (
    ConcurrentUpdate,
    Dispute,
    DisputeAlreadyExists,
    DisputeNotFound,
    Order,
    OrderFacts,
    OrderNotFound,
    Policy,
    VersionMismatch,
    dispute_id,
    handlers,
    order_id,
    rules,
)
from .domain.commands import Command
from .domain.values import Actor, Context, Role
from .latest import LatestDisputes
from .transcodings import register as register_value_transcodings

SYSTEM_ACTOR = Actor(Role.SYSTEM, "deadline-worker")

# Disputes each process keeps at their newest version (services.dispute.latest); a few
# kilobytes each for a case of tens of events.
CACHED_DISPUTES = 1000

# A dispute's snapshot every this many events (DISPUTES_SNAPSHOT_INTERVAL): a load reads
# the latest snapshot and replays at most this many events after it.
SNAPSHOT_INTERVAL = 50

# Called with the changed aggregate (and whether it was just created) right before it is
# saved; what it returns is passed to the recorder as `save(..., idempotency=...)` and
# stored in the same transaction as the events (the request's idempotent response, see
# services.dispute.infrastructure.idempotency). Called again if the save is retried.
Respond = Callable[[Any, bool], object]


def _respond(respond: Respond | None, aggregate: Any, created: bool) -> dict[str, object]:
    return {} if respond is None else {"idempotency": respond(aggregate, created)}


class DisputeApplication(Application[UUID]):
    name = "Disputes"
    # On the class, it switches snapshotting on (the library's construct_env reads the
    # class's); each instance replaces it with its own interval (`snapshot_interval`).
    snapshotting_intervals = {Dispute: SNAPSHOT_INTERVAL}

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
        cached_disputes: int = CACHED_DISPUTES,
        snapshot_interval: int = SNAPSHOT_INTERVAL,
    ) -> None:
        if snapshot_interval < 1:
            raise ValueError(f"snapshot_interval must be at least 1, got {snapshot_interval}")
        # Read by the library's _take_snapshots on every save, through the instance.
        self.snapshotting_intervals = {Dispute: snapshot_interval}  # type: ignore[misc]
        super().__init__(env=env)
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or Policy()
        self.latest = LatestDisputes(cached_disputes)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """The Dispute's value objects, as its snapshots store them."""
        super().register_transcodings(transcoder)
        register_value_transcodings(transcoder)

    def context(self, actor: Actor, correlation_id: str) -> Context:
        """Who, when, and which request (its id, and its trace when it has one)."""
        return Context(
            actor=actor,
            at=self.clock.now(),
            correlation_id=correlation_id,
            traceparent=current_traceparent(),
        )

    # Orders ----------------------------------------------------------------------------

    def put_order(
        self,
        actor: Actor,
        correlation_id: str,
        order_ref: str,
        facts: OrderFacts,
        *,
        respond: Respond | None = None,
    ) -> tuple[Order, bool]:
        """Registers an order, or adds shipping and delivery facts to it.

        Returns the order and whether it was newly registered. Repeating the same facts
        records nothing.
        """
        for attempt in range(2):
            ctx = self.context(actor, correlation_id)
            existing = self._find_order(order_ref)
            if existing is None:
                order = Order.register(ctx, order_ref, facts, self.policy)
                created = True
            else:
                order, created = existing, False
                order.record_facts(ctx, facts)
            try:
                self.save(order, **_respond(respond, order, created))
            except IntegrityError:
                if attempt == 0:
                    continue  # a racing registration or update won: apply ours to theirs
                raise ConcurrentUpdate(f"order {order_ref}") from None
            return order, created
        raise AssertionError("unreachable")  # pragma: no cover

    def extend_protection(
        self,
        actor: Actor,
        correlation_id: str,
        order_ref: str,
        days: object,
        reason: object,
        *,
        respond: Respond | None = None,
    ) -> Order:
        order = self.get_order(actor, order_ref)
        order.extend_protection(self.context(actor, correlation_id), days, reason)
        self._save(order, f"order {order_ref}", **_respond(respond, order, False))
        return order

    def record_chargeback(
        self,
        actor: Actor,
        correlation_id: str,
        order_ref: str,
        *,
        reference: object,
        amount: Money,
        reason: object,
        opened_at: object,
        respond: Respond | None = None,
    ) -> Order:
        """Records a chargeback the payments service reports on an order, and closes the
        order's open dispute with outcome `chargeback` (both in one transaction).

        A dispute already closed with a refund paid makes it a double recovery.
        """
        order = self.get_order(actor, order_ref)
        ctx = self.context(actor, correlation_id)
        dispute: Dispute | None = None
        if order.dispute_id is not None:
            dispute = self.repository.get(_uuid(order.dispute_id))
        refund = dispute.refund if dispute is not None else None
        paid = refund.amount if refund is not None and refund.paid_at is not None else None
        chargeback = order.record_chargeback(
            ctx, reference=reference, amount=amount, reason=reason, opened_at=opened_at,
            refund_paid=paid,
        )  # fmt: skip
        changed: list[Order | Dispute] = [order]
        if dispute is not None and dispute.state != rules.CLOSED:
            dispute.close_by_chargeback(
                ctx, reference=chargeback["reference"], amount=chargeback["amount"]
            )
            changed.append(dispute)
        try:
            self.save(*changed, **_respond(respond, order, True))
        except IntegrityError:
            raise ConcurrentUpdate(f"order {order_ref}") from None
        return order

    def get_order(self, actor: Actor, order_ref: str) -> Order:
        order = self._find_order(order_ref)
        if order is None or not order.visible_to(actor):
            raise OrderNotFound(order_ref)
        return order

    def _find_order(self, order_ref: str) -> Order | None:
        try:
            order: Order = self.repository.get(order_id(order_ref))
        except AggregateNotFoundError:
            return None
        return order

    # Disputes: commands ----------------------------------------------------------------

    def open_dispute(
        self,
        actor: Actor,
        correlation_id: str,
        *,
        order_ref: str,
        reason: object,
        requested_resolution: object,
        amount: Money,
        description: object,
        evidence: Sequence[Mapping[str, Any]],
        respond: Respond | None = None,
    ) -> Dispute:
        order = self.get_order(actor, order_ref)
        dispute = Dispute.open(
            self.context(actor, correlation_id),
            order,
            reason=reason,
            requested_resolution=requested_resolution,
            amount=amount,
            description=description,
            evidence=evidence,
            policy=self.policy,
        )
        try:
            # one transaction: both or neither (and the response, if any)
            self.save(dispute, order, **_respond(respond, dispute, True))
        except IntegrityError:
            if dispute_id(order_ref) in self.repository:
                raise DisputeAlreadyExists(order_ref, str(dispute_id(order_ref))) from None
            raise ConcurrentUpdate(f"order {order_ref}") from None
        self.latest.put(dispute)
        return dispute

    def handle(
        self,
        actor: Actor,
        correlation_id: str,
        ref: str,
        command: Command,
        *,
        expected_version: int | None = None,
        respond: Respond | None = None,
    ) -> Dispute:
        """Applies one command of the registry (`MakeOffer`, `Rule`, ...) to a dispute.

        With `expected_version`, a dispute at another version is refused (and so is a
        racing write that wins first): nothing is recorded.
        """
        dispute = self.get_dispute(actor, ref)
        if expected_version is not None and dispute.version != expected_version:
            raise VersionMismatch(f"dispute {ref}", expected_version, dispute.version)
        handlers.apply(dispute, self.context(actor, correlation_id), command)
        try:
            self.save(dispute, **_respond(respond, dispute, False))
        except IntegrityError:
            self.latest.discard(dispute.id)  # another process wrote: load afresh next time
            if expected_version is not None:
                current: int = self.repository.get(dispute.id).version
                raise VersionMismatch(f"dispute {ref}", expected_version, current) from None
            raise ConcurrentUpdate(f"dispute {ref}") from None
        self.latest.put(dispute)
        return dispute

    def fire_due_timeouts(self, ref: str | UUID, correlation_id: str) -> list[str]:
        """Fires every time-out of one dispute that the table says is due now.

        Re-reads the aggregate first, so a time-out already fired (by another worker,
        or before a restart) is not fired again. Returns the triggers fired.
        """
        fired: list[str] = []
        while True:
            try:
                dispute: Dispute = self.repository.get(_uuid(ref))
            except AggregateNotFoundError:
                return fired
            ctx = self.context(SYSTEM_ACTOR, correlation_id)
            due = dispute.due_timeouts(ctx.at)
            if not due:
                return fired
            dispute.fire_timeout(ctx, due[0])
            try:
                self.save(dispute)
            except IntegrityError:
                continue  # someone else acted first; look again at the new version
            fired.append(due[0])

    # Disputes: queries -----------------------------------------------------------------

    def get_dispute(
        self,
        actor: Actor,
        ref: str | UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Dispute:
        """The dispute now, or as it was at a version or a moment (replayed from events).

        Every "not found" is the same answer, `dispute <ref> was not found`, whether the
        dispute does not exist, is not the caller's, or did not exist yet at that version
        or time: a caller can learn nothing of another party's dispute by bisecting
        `as_of` or `version`."""
        aggregate_id = _uuid(ref)
        if as_of is not None:
            version = self._version_at(aggregate_id, as_of, ref)
        try:
            if version is None:
                dispute: Dispute = self._newest(aggregate_id)
            else:
                dispute = self.repository.get(aggregate_id, version=version)
        except (AggregateNotFoundError, ValueError):
            raise DisputeNotFound(str(ref)) from None
        if not isinstance(dispute, Dispute) or not dispute.visible_to(actor):
            raise DisputeNotFound(str(ref))
        if version is not None and dispute.version != version:
            raise DisputeNotFound(str(ref))
        return dispute

    def _newest(self, aggregate_id: UUID) -> Any:
        """The aggregate at its newest version: the kept copy brought up to date with the
        events recorded after it (services.dispute.latest), else replayed."""
        kept = self.latest.get(aggregate_id)
        aggregate: Any
        if kept is None:
            aggregate = self.repository.get(aggregate_id)
        else:
            kept_version = kept.version
            aggregate = project_aggregate(kept, self.events.get(aggregate_id, gt=kept_version))
            if aggregate.version == kept_version:
                return aggregate  # nothing newer: what is kept already equals it
        if isinstance(aggregate, Dispute):
            self.latest.put(aggregate)
        return aggregate

    def dispute_events(self, actor: Actor, ref: str | UUID) -> list[Dispute.Event]:
        dispute = self.get_dispute(actor, ref)
        return list(self.events.get(dispute.id))  # type: ignore[arg-type]

    def _version_at(self, aggregate_id: UUID, as_of: datetime, ref: object) -> int:
        version = None
        for event in self.events.get(aggregate_id):
            if cast("Dispute.Event", event).timestamp > as_of:
                break
            version = event.originator_version
        if version is None:
            raise DisputeNotFound(str(ref))
        return version

    def _save(self, aggregate: Order | Dispute, ref: str, **kwargs: object) -> None:
        try:
            self.save(aggregate, **kwargs)
        except IntegrityError:
            raise ConcurrentUpdate(ref) from None


def _uuid(ref: str | UUID) -> UUID:
    if isinstance(ref, UUID):
        return ref
    try:
        return UUID(ref)
    except (ValueError, TypeError, AttributeError):
        raise DisputeNotFound(str(ref)) from None
