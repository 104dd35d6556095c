"""The systemd units in deploy/systemd/ are valid and restart their part."""

import configparser
import subprocess
from pathlib import Path

from serviceplus.settings import PROJECT_ROOT

UNITS = PROJECT_ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/serviceplus"


def test_units_pass_systemd_analyze_with_this_checkout_as_install_dir(tmp_path):
    # The units name /opt/serviceplus; here the commands must exist in this checkout.
    for unit in [*UNITS.glob("*.service"), *UNITS.glob("*.timer")]:
        text = unit.read_text().replace(INSTALL_DIR, str(PROJECT_ROOT))
        (tmp_path / unit.name).write_text(text)
    names = sorted(p.name for p in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_long_running_parts_restart_and_wait_until_healthy():
    for name in ["prefect-server", "forkserver", "worker", "web"]:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(UNITS / f"serviceplus-{name}.service")
        service = unit["Service"]
        assert service["Restart"] == "always", name
        assert service["EnvironmentFile"] == "/etc/serviceplus/serviceplus.env", name
        if name != "worker":  # the worker has no port; the sweeper recovers its runs
            assert "ExecStartPost" in service, name
    env = (UNITS / "serviceplus.env.example").read_text()
    assert "PREFECT_RESULTS_LOCAL_STORAGE_PATH=" in env
    assert Path(INSTALL_DIR, ".venv/bin").as_posix() in env
