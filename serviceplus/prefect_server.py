"""`prefect server start`, with one change for SQLite: every transaction the
server opens to write begins IMMEDIATE.

Prefect 3.9 opens its write transactions on SQLite as DEFERRED: they read
first and take the write lock when they first write. When another writer
committed in between (a finishing flow run, the event persister, a worker's
heartbeat), SQLite cannot upgrade that transaction and answers "database is
locked" at once, without waiting for its busy timeout (WAL mode keeps the
reader's snapshot). The server then fails the state change or the heartbeat
and the client retries: seconds lost for the next task after a decision,
and the error in the log (docs/performance.md, issue 18). IMMEDIATE takes the
write lock at BEGIN, so writers queue for the busy timeout (60 s) instead.
Reads outside transactions are unchanged; PostgreSQL is not touched.

Usage: python -m serviceplus.prefect_server [options of `prefect server start`]
"""

import sys
from contextlib import asynccontextmanager


def immediate_sqlite_writes() -> None:
    from prefect.server.database import configurations

    @asynccontextmanager
    async def begin_transaction(self, session, with_for_update: bool = False):
        token = configurations.SQLITE_BEGIN_MODE.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            configurations.SQLITE_BEGIN_MODE.reset(token)

    configurations.AioSqliteConfiguration.begin_transaction = begin_transaction


def main() -> None:
    immediate_sqlite_writes()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
