"""A local SMTP sink for `make run` (demo mode without SERVICEPLUS_SMTP_HOST):
a real SMTP server (aiosmtpd) on a free loopback port that keeps every mail
as an .eml file in <data>/mails, where `serviceplus mails` lists them.
Nothing leaves the machine.

    python -m serviceplus.mailsink PORT DIRECTORY
"""

import email
import email.policy
import signal
import sys
import threading
import time
from pathlib import Path


class _Store:
    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        name = f"{time.time_ns()}.eml"
        draft = self.directory / f".{name}"
        draft.write_bytes(envelope.content)
        draft.rename(self.directory / name)  # readers never see half a mail
        return "250 OK"


def serve(port: int, directory: Path) -> None:
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Store(directory), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def read_mails(directory: Path) -> list[email.message.EmailMessage]:
    """The stored mails, newest first."""
    files = sorted(directory.glob("*.eml"), reverse=True) if directory.exists() else []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files
    ]


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
