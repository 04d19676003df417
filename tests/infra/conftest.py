"""One real Synapse and one real mosquitto for the whole session, started by ``up()``.

They run on free (non-default) ports in a temporary state folder under /tmp
(mode 0711, like the default ``.dongyu/``, so mosquitto drops to its own user
as it does in real use) and are stopped by ``down()`` at the end. Settings are
built directly, never from this process's environment, so a developer's
``MATRIX_HOMESERVER_URL`` or ``.env`` cannot turn the tests to external mode.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dongyu.infra import UpResult, down, up
from dongyu.infra.process import free_port
from dongyu.settings import InfraInfo, InfraSettings, read_infra_info


def make_state_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o711)
    return path


@pytest.fixture
def new_state_dir() -> Iterator[Callable[[str], Path]]:
    """A factory of fresh state folders, removed after the test."""
    made: list[Path] = []

    def make(prefix: str) -> Path:
        made.append(make_state_dir(prefix))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Infra:
    settings: InfraSettings
    first_up: UpResult

    @property
    def info(self) -> InfraInfo:
        return read_infra_info(self.settings.state_dir)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    state_dir = make_state_dir("dongyu-infra-test-")
    matrix_port = free_port()
    mqtt_port = free_port()
    while mqtt_port == matrix_port:
        mqtt_port = free_port()
    settings = InfraSettings(
        state_dir=state_dir, matrix_port=matrix_port, mqtt_port=mqtt_port, timeout_s=60
    )
    try:
        result = up(settings)
        yield Infra(settings, result)
    finally:
        down(settings)
        shutil.rmtree(state_dir, ignore_errors=True)
