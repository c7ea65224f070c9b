"""Configuration against Genesys' facts: every region resolves and is documented, and an
ExternalSource name Genesys would refuse is refused at load, naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import Settings, load_settings
from syncd.errors import ConfigError
from syncd.regions import REGION_API_HOSTS

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
BASE = "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n"


def load(tmp_path: Path, extra: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    path.chmod(0o600)
    return load_settings(path)


def test_the_eu_sovereign_cloud_region_fills_both_urls(tmp_path: Path) -> None:
    settings = load(tmp_path, "region = 'eusc_de_east_1'\n")
    genesys = settings.genesys
    assert genesys.effective_api_url == "https://api.edee1.eusc-pure.cloud/api/v2"
    assert genesys.effective_login_url == "https://login.edee1.eusc-pure.cloud"


def test_the_example_config_lists_every_region() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert [r for r in REGION_API_HOSTS if r not in text] == []


def test_an_external_source_name_of_200_characters_loads(tmp_path: Path) -> None:
    settings = load(tmp_path, f"external_source = '{'s' * 200}'\n")
    assert len(settings.genesys.external_source) == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s" * 201, "genesys.external_source: is 201 characters; Genesys allows an "),
        ("   ", "genesys.external_source: must not be empty"),
    ],
)
def test_an_external_source_name_genesys_would_refuse_is_refused_at_load(
    tmp_path: Path, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"external_source = '{value}'\n")
    assert any(expected in problem for problem in info.value.problems), info.value.problems
