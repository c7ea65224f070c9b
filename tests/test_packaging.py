"""The installed wheel is self-sufficient: `syncd db upgrade` finds its migrations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from syncd.store.migrate import head_revision

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_db_upgrade_from_installed_wheel(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (needed to build the wheel)")
    dist = tmp_path / "dist"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("syncd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "syncd/_migrations/env.py" in names
    shipped = {Path(n).name for n in names if n.startswith("syncd/_migrations/versions/")}
    assert {p.name for p in (ROOT / "migrations" / "versions").glob("*.py")} <= shipped
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)  # a wheel is a zip laid out as site-packages
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    config = workdir / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{workdir / "syncd.db"}"\n'
        '[genesys]\nclient_id = "x"\nclient_secret = "y"\n'
    )
    config.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    script = (
        "import sys, syncd, syncd.store.migrate as m; "
        "assert syncd.__file__.startswith(sys.argv[1]), syncd.__file__; "
        "print(m.migrations_dir()); "
        "from syncd.cli import main; main(['--config', sys.argv[2], 'db', 'upgrade'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(target), str(config)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(target / "syncd" / "_migrations") in proc.stdout
    assert f"empty -> {head_revision()}" in proc.stdout
