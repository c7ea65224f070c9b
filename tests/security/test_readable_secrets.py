"""A secret readable by other users is reported (``config.secret_readable_by_others``).

Through the real entry point (``syncd.cli.main``), for a config file holding the secret and
for a ``client_secret_file``; a private file (0600), or a secret from the environment,
produces no warning. The warning names the file and the fix, never the secret.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from syncd.cli import main

SECRET = "Readable-Raven-31d2c4b5a6-secret"


def run_check(config: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--config", str(config), "--log-format", "json", "config", "check"])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize(
    ("holder", "mode", "warned"),
    [
        ("config", 0o644, True),
        ("config", 0o640, True),
        ("config", 0o600, False),
        ("file", 0o644, True),
        ("file", 0o604, True),
        ("file", 0o600, False),
    ],
)
def test_secret_readable_by_others_warns(
    tmp_path: Path, holder: str, mode: int, warned: bool
) -> None:
    config = tmp_path / "config.toml"
    text = "[genesys]\nclient_id = 'cid'\n"
    secret_file = tmp_path / "client_secret"
    if holder == "config":
        text += f"client_secret = '{SECRET}'\n"
    else:
        secret_file.write_text(SECRET, encoding="utf-8")
        secret_file.chmod(mode)
        text += f"client_secret_file = '{secret_file}'\n"
    config.write_text(text, encoding="utf-8")
    config.chmod(mode if holder == "config" else 0o644)  # the file's own mode is not at issue
    code, output = run_check(config)
    assert code == 0, output
    assert ("config.secret_readable_by_others" in output) is warned, output
    if warned:
        named = config if holder == "config" else secret_file
        assert str(named) in output
        assert f"chmod 600 {named}" in output
    assert SECRET not in output


def test_secret_from_the_environment_is_not_a_file_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[genesys]\nclient_id = 'cid'\n", encoding="utf-8")
    config.chmod(0o644)
    monkeypatch.setenv("SYNCD_GENESYS_CLIENT_SECRET", SECRET)
    code, output = run_check(config)
    assert code == 0, output
    assert "secret_readable_by_others" not in output
    assert SECRET not in output
