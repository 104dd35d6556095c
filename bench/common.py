"""Helpers the benchmark scripts share. Importing this has no side effects:
each script sets its own environment (data directory, ports) first."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLI = str(Path(sys.executable).parent / "serviceplus")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_until(check, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError


def login_url() -> str:
    return f"http://127.0.0.1:{os.environ['SERVICEPLUS_WEB_PORT']}/login"


def serves_login() -> bool:
    try:
        with urllib.request.urlopen(login_url(), timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def start_stack() -> tuple[subprocess.Popen, float]:
    """`serviceplus run` with this process's environment; seconds until the
    login page is served."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [CLI, "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    while not serves_login():
        if proc.poll() is not None:
            raise RuntimeError("serviceplus run exited early; see the logs in its data directory")
        time.sleep(0.1)
    return proc, time.monotonic() - started


def stop_stack(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 2)  # Ctrl-C, as a user would
    proc.wait(timeout=60)


def replace_section(path: Path, section: str) -> None:
    """Put `section` in place of the section with the same heading (or append it)."""
    heading = section.splitlines()[0]
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    before, found, rest = old.partition(heading)
    after = rest[rest.find("\n## ") + 1 :] if found and "\n## " in rest else ""
    path.write_text(before.rstrip() + "\n\n" + section + ("\n" + after if after else ""))
