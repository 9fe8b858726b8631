"""The ordered event feed is complete: a follower reading `select_notifications` from its
last position while several writers commit concurrently sees every event exactly once,
in increasing notification-id order. This is what the deadline scheduler (and every
projection) relies on. On PostgreSQL (where ids are allocated before commit, so only the
writers' table lock keeps them in commit order) and on SQLite."""

from __future__ import annotations

import threading
from uuid import UUID

from services.dispute.application import DisputeApplication
from shared.clock import SystemClock
from tests.integration.app_commands import act
from tests.integration.test_scheduler import BUYER, SELLER, dispute_app, open_case

WRITERS = 4
COMMANDS_PER_WRITER = 100
DISPUTES_PER_WRITER = 4


def test_a_follower_sees_every_event_once_and_in_order(backend: dict[str, str]) -> None:
    with dispute_app(backend, SystemClock()) as app:
        done = threading.Event()
        errors: list[BaseException] = []
        seen: list[tuple[int, UUID, int]] = []  # (notification id, originator, version)
        seen_while_writing: list[int] = []  # events read before the writers had finished
        start = threading.Barrier(WRITERS + 1)

        def write(w: int) -> None:
            try:
                start.wait(timeout=10)
                ids = [open_case(app, f"o-feed-{w}-{i}") for i in range(DISPUTES_PER_WRITER)]
                for n in range(COMMANDS_PER_WRITER - DISPUTES_PER_WRITER):
                    dispute_id = str(ids[n % len(ids)])
                    actor = BUYER if n % 2 else SELLER
                    act(app, actor, f"feed-{w}-{n}", dispute_id, "messages", {"body": f"m{n}"})
            except BaseException as exc:  # reported below
                errors.append(exc)

        def follow(follower_app: DisputeApplication) -> None:
            try:
                start.wait(timeout=10)
                last = 0
                while True:
                    finished = done.is_set()  # read before the page: the page is then final
                    page = follower_app.recorder.select_notifications(last + 1, 37)
                    for n in page:
                        seen.append((n.id, UUID(str(n.originator_id)), n.originator_version))
                    if page:
                        last = page[-1].id
                        if not finished:
                            seen_while_writing.append(len(page))
                    elif finished:
                        return
            except BaseException as exc:  # reported below
                errors.append(exc)

        with dispute_app(backend, SystemClock()) as reader:  # its own connections
            writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
            follower = threading.Thread(target=follow, args=(reader,))
            for t in [*writers, follower]:
                t.start()
            for t in writers:
                t.join(timeout=120)
            done.set()
            follower.join(timeout=60)
        assert not errors, errors
        assert not follower.is_alive()
        assert seen_while_writing, "the follower never read while writers were committing"

        ids = [n for n, _, _ in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "out of order or repeated"
        stored = [
            (UUID(str(n.originator_id)), n.originator_version)
            for n in app.recorder.select_notifications(1, 1_000_000)
        ]
        pairs = [(o, v) for _, o, v in seen]
        assert len(pairs) == len(set(pairs)), "an event was seen twice"
        assert set(pairs) == set(stored), "the follower missed events"
        # Every command recorded what it should: one message event per message command,
        # one opening per dispute.
        topics = [n.topic for n in app.recorder.select_notifications(1, 1_000_000)]
        messages = WRITERS * (COMMANDS_PER_WRITER - DISPUTES_PER_WRITER)
        assert sum(t.endswith("Dispute.MessagePosted") for t in topics) == messages
        assert sum(t.endswith("Dispute.Opened") for t in topics) == WRITERS * DISPUTES_PER_WRITER
        # ...and the per-aggregate histories agree with the feed.
        by_aggregate: dict[UUID, int] = {}
        for originator_id, _ in stored:
            by_aggregate[originator_id] = by_aggregate.get(originator_id, 0) + 1
        for originator_id, count in by_aggregate.items():
            assert len(list(app.recorder.select_events(originator_id))) == count
