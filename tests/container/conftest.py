"""The container suite: Docker set up once per session, the image built once, all cleaned up.

Everything here is marked `container`; it needs root (apt, dockerd, debootstrap), as CI has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_helpers import (
    Containers,
    DockerSetup,
    build_image,
    make_secret_files,
    prepare_docker,
    stop_dockerd,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def docker_setup() -> Iterator[DockerSetup]:
    if os.geteuid() != 0:
        pytest.fail("the container tests need root: they install Docker and start dockerd")
    setup = prepare_docker()
    yield setup
    if setup.started_dockerd_pid is not None:
        stop_dockerd(setup.started_dockerd_pid)


@pytest.fixture(scope="session")
def image(docker_setup: DockerSetup) -> str:
    build_image(docker_setup.base_image)
    return "openchat:test"


@pytest.fixture(scope="session")
def secret_files(image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_secret_files(tmp_path_factory.mktemp("secrets"))


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    made = Containers()
    yield made
    made.remove_all()
