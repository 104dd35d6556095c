"""One database session per request, closed when the request ends."""

from flask import Flask, g
from sqlmodel import Session

from serviceplus.models.db import get_engine


def get_db() -> Session:
    if "db" not in g:
        g.db = Session(get_engine(), expire_on_commit=False)
    return g.db


def _close(_exc) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close)
