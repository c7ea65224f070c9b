"""Fixtures for the Genesys client tests: virtual time and a scripted fake server."""

from __future__ import annotations

import pytest

from tests.genesys.fakes import FakeServer, FakeTime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def server(fake_time: FakeTime) -> FakeServer:
    return FakeServer(fake_time)
