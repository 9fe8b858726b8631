"""Running a command over HTTP, with Stripe's idempotency-key semantics.

- No key: execute and answer.
- A key: claim it for the caller (role and id). A key already answered for the same
  request (method, path, canonical body) replays the stored response; for another
  request it is refused (422 `idempotency_key_reused`); a key another request is
  executing makes this one wait briefly, then replay or answer 409
  `idempotency_in_progress`.
- A command's response is stored by the recorder in the transaction of its events
  (`respond` below), so a response lost after the commit is replayed on a retry.
- A domain refusal (nothing recorded) is stored in its own transaction, except a lost
  race (`concurrent_update`) and invalid input (`invalid_input`): as with Stripe, a
  request whose parameters fail validation saves no result, so the corrected request
  may use the same key. The claim is released when the request ends, however it
  ends (and ends with the process or its connection on PostgreSQL), so a retry after
  a failure executes at once.
- A failure whose outcome is unknown (the connection broke after the write was sent)
  is a 503, never a refusal: the retry with the same key replays the stored response
  if the write committed, and executes if it did not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import Request
from fastapi.responses import Response

from services.dispute.application import Respond
from services.dispute.domain import ConcurrentUpdate, DomainError, InvalidInput
from services.dispute.infrastructure.idempotency import (
    Claim,
    Claimed,
    Completion,
    InProgress,
    Replay,
    Reused,
    StoredResponse,
    fingerprint,
)
from services.dispute.metrics import COMMANDS, IDEMPOTENCY_REPLAYS

from .dependencies import Call
from .problems import ApiProblem, domain_problem, stored_problem

log = logging.getLogger("services.dispute.api")

POLL_SECONDS = 0.05
PURGE_EVERY_SECONDS = 600.0

Perform = Callable[[Respond | None], tuple[Any, bool]]
Render = Callable[[Any, bool], StoredResponse]


def to_response(stored: StoredResponse, *, replayed: bool = False) -> Response:
    headers = {k: v for k, v in stored.headers.items() if k.lower() != "content-type"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        content=stored.body,
        status_code=stored.status,
        headers=headers,
        media_type=stored.headers.get("Content-Type"),
    )


def command_name(request: Request) -> str:
    """The command's name for the metrics: the route's endpoint name (open_dispute,
    put_order, action_accept_offer...)."""
    return str(getattr(request.scope.get("route"), "name", None) or "unknown")


def run(request: Request, call: Call, perform: Perform, render: Render) -> Response:
    """Executes `perform` (which passes `respond` to the application) once per key; counts
    the outcome (disputes_commands_total)."""
    outcome = "error"
    try:
        response = _run(request, call, perform, render)
        if "Idempotent-Replayed" in response.headers:
            outcome = "replayed"
        elif response.status_code >= 400:  # a refusal stored under the key
            outcome = getattr(request.state, "refusal", "refused")
        else:
            outcome = "applied"
        return response
    except DomainError as error:
        outcome = error.code
        raise
    except ApiProblem as problem:
        outcome = problem.code
        raise
    finally:
        COMMANDS.labels(command_name(request), outcome).inc()


def _run(request: Request, call: Call, perform: Perform, render: Render) -> Response:
    if call.idempotency_key is None or call.store is None:
        aggregate, created = perform(None)
        return to_response(render(aggregate, created))
    claim = _claim(request, call)
    if isinstance(claim, Response):
        return claim
    rendered: list[StoredResponse] = []

    def respond(aggregate: Any, created: bool) -> Completion:
        rendered.append(render(aggregate, created))
        return Completion(claim, rendered[-1])

    try:
        perform(respond)
    except DomainError as error:
        if isinstance(error, ConcurrentUpdate | InvalidInput):
            raise  # nothing to keep: the claim goes, and a retry (or a fix) executes
        request.state.refusal = error.code
        # A refusal is stored for the key; if the key has a response already (our own
        # write, committed before a broken connection), that is the answer.
        refusal = stored_problem(domain_problem(request, error))
        return to_response(call.store.store_response(Completion(claim, refusal), time.time()))
    finally:
        _release(call, claim)  # however it ended: a retry must never wait for it
    return to_response(rendered[-1])


def run_plain(request: Request, call: Call, execute: Callable[[], StoredResponse]) -> Response:
    """A command that records no events (the sandbox clock): its response is stored after
    it ran, in a transaction of its own (`execute` must be safe to repeat)."""
    if call.idempotency_key is None or call.store is None:
        return to_response(execute())
    claim = _claim(request, call)
    if isinstance(claim, Response):
        return claim
    try:
        try:
            stored = execute()
        except DomainError as error:
            stored = stored_problem(domain_problem(request, error))
        return to_response(call.store.store_response(Completion(claim, stored), time.time()))
    finally:
        _release(call, claim)


def _release(call: Call, claim: Claim) -> None:
    """Gives the claim up; a failure here must not turn the request's answer into an
    error (the claim then ends with the session, or its lease on SQLite)."""
    assert call.store is not None
    try:
        call.store.release(claim)
    except PersistenceError as error:
        log.warning("releasing Idempotency-Key %r failed: %s", claim.key, error)


def _claim(request: Request, call: Call) -> Claim | Response:
    assert call.store is not None and call.idempotency_key is not None
    store, settings = call.store, call.settings
    _purge_now_and_then(request, call)
    deadline = time.monotonic() + settings.idempotency_wait_seconds
    while True:
        claim = Claim(
            call.principal, call.idempotency_key, fingerprint(call.method, call.path, call.body)
        )
        result = store.try_claim(claim, time.time(), settings.idempotency_lease_seconds)
        if isinstance(result, Claimed):
            return result.claim
        if isinstance(result, Replay):
            IDEMPOTENCY_REPLAYS.inc()
            return to_response(result.response, replayed=True)
        if isinstance(result, Reused):
            raise ApiProblem(
                422,
                "idempotency_key_reused",
                "Idempotency key reused",
                f"Idempotency-Key {call.idempotency_key!r} was already used for a different "
                "request (method, path or body); use a new key for a new request",
            )
        assert isinstance(result, InProgress)
        if time.monotonic() >= deadline:
            raise ApiProblem(
                409,
                "idempotency_in_progress",
                "Request in progress",
                f"a request with Idempotency-Key {call.idempotency_key!r} is still being "
                "processed; retry shortly with the same key",
                headers={"Retry-After": "1"},
            )
        time.sleep(POLL_SECONDS)


def _purge_now_and_then(request: Request, call: Call) -> None:
    """Forgets keys past their retention, at most once every few minutes per process."""
    state = request.app.state
    now = time.time()
    if now - getattr(state, "idempotency_purged_at", 0.0) < PURGE_EVERY_SECONDS:
        return
    state.idempotency_purged_at = now
    assert call.store is not None
    call.store.purge(older_than=now - call.settings.idempotency_ttl_hours * 3600)
