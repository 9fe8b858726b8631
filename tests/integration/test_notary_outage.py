"""The notary outlives a database outage: it keeps retrying while PostgreSQL refuses its
connections, says so once when the database goes and once when it is back, and then
catches up with what was recorded meanwhile (PostgreSQL only).

The outage is real: the notary connects as a role of its own whose sessions are ended
and whose CONNECTION LIMIT is then 0, so every reconnection is refused (SQLSTATE 53300);
the cases are recorded meanwhile by a superuser, whom the limit does not hold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.dispute.application import DisputeApplication
from services.dispute.transparency.checkpoint import Signer
from services.dispute.transparency.notary import Notary, build
from services.dispute.transparency.tree import TreeStore
from tests.conftest import PgConnInfo, postgres_env

from .http_support import settings_for
from .pg_roles import Role, limited_role
from .test_scheduler import open_case

pytestmark = pytest.mark.postgres

NOTARY_LOGGER = "services.dispute.transparency.notary"


@pytest.fixture
def role(pg_conninfo: PgConnInfo) -> Iterator[Role]:
    with limited_role(pg_conninfo) as limited:
        yield limited


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def test_the_notary_retries_while_the_database_is_away_and_catches_up(
    role: Role, pg_conninfo: PgConnInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(
        postgres_env(role.conninfo, role.schema),
        checkpoint_key=SecretStr(Signer.generate("disputes.test/log").encode()),
        checkpoint_dir=tmp_path / "checkpoints",
    )
    # As the notary's process makes it (its tables, owned by the role, made first).
    app = DisputeApplication(env={**settings.persistence_env(), "POSTGRES_POOL_SIZE": "2"})
    writer = DisputeApplication(env={**postgres_env(pg_conninfo, role.schema), "CREATE_TABLE": "n"})
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        notary: Notary = build(app, settings)
        tree = TreeStore(writer.recorder.datastore)  # read as the superuser, not the role

        def size() -> int:
            return tree.state().size

        def recorded() -> int:
            return writer.recorder.max_notification_id() or 0

        thread = threading.Thread(target=notary.run_forever, args=(stop, 0.05), daemon=True)
        caplog.set_level(logging.DEBUG, logger=NOTARY_LOGGER)
        thread.start()
        open_case(writer, "o-before")
        wait_for(lambda: size() == recorded(), "the notary followed the feed")

        role.limit(0)
        role.terminate()
        open_case(writer, "o-during")
        time.sleep(2.0)  # several attempts, all refused
        assert thread.is_alive(), "the notary stopped while the database was away"
        assert size() < recorded()

        role.limit(20)
        wait_for(lambda: size() == recorded(), "the notary caught up after the outage", 10.0)
        assert thread.is_alive()
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        writer.close()
        app.close()
    lines = [r for r in caplog.records if r.name == NOTARY_LOGGER and r.levelno >= logging.INFO]
    said = [r.getMessage() for r in lines]
    assert [m.split(" (")[0].split(" after")[0] for m in said] == [
        "database unavailable",
        "database available again",
    ], said
