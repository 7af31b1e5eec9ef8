"""Shared fixtures, and the tiers of the suite.

The trained tiny models are built once, even when the tests run in several worker processes
(pytest-xdist): the first worker to need them builds them while the others wait. They are kept
in pytest's cache folder (``.pytest_cache``), keyed by the code that builds them and the
versions of torch and transformers, and reused by later runs while those are unchanged; a
fresh clone (CI) builds them once per run. TINY_MODELS_CACHE names another folder for them.

Tiers (markers), for the everyday command to leave out
(``-m "not process and not ray and not container"``):
``process`` starts real ``python -m bot`` or ``python -m captioning`` processes, ``ray`` a Ray
cluster. Tests under ``tests/e2e/`` and those that use ``bot_processes`` are ``process`` by
themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach a model hub: everything they load is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers share the cores: one thread each for the tiny models (and for the bots and
    # CLIs they start), rather than every worker's threads taking turns on every core.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the ``process`` tier, and, on several workers, runs it first.

    pytest-xdist hands out the ``xdist_group`` groups first (the larger first), then the other
    tests one at a time in this order. A test that starts processes takes seconds where most
    take milliseconds: left to the end, one worker runs them while the other has nothing left
    to do. First, the quick ones fill the gaps at the end. A grouped test stays where it is
    (its group goes as one), and so does everything in a run on one process, where the order
    saves nothing and would split a module's fixtures (a Ray cluster started twice)."""
    for item in items:
        if "bot_processes" in getattr(item, "fixturenames", ()) or "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.process)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker collects, in the same order
        items.sort(key=_not_first)


def _not_first(item: pytest.Item) -> bool:
    return not item.get_closest_marker("process") or bool(item.get_closest_marker("xdist_group"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A module whose fixtures are costly (a Ray cluster, int8 models) keeps to one worker by
    its ``xdist_group``, which pytest-xdist marks in each test's id; where it can't (pytest 9.2
    made ids read-only), every worker would start its own copy. That fails, not a slow run."""
    grouped = getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group")
    if grouped and "@" not in item.nodeid:
        pytest.fail(
            f"xdist_group is ignored: pytest {pytest.__version__} with this pytest-xdist runs "
            "a group's tests on every worker; install pytest<9.2 (pyproject.toml's dev extra)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def tiny_model_dirs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The folders of the models trained to tiny_models' captions and answers (TinyModels)."""
    from tests.support.tiny_models import cached_models

    cache = os.environ.get("TINY_MODELS_CACHE")
    if cache:
        return cached_models(Path(cache))
    if request.config.cache is not None:
        return cached_models(request.config.cache.mkdir("tiny-models"))
    base = tmp_path_factory.getbasetemp()  # -p no:cacheprovider: once per run
    # Workers of one run have folders side by side (popen-gw0, ...): the models go beside them.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return cached_models(shared / "tiny-models")


@pytest.fixture(scope="session")
def tiny_locator_dir(tiny_model_dirs):
    """A tiny Florence-2 that says where squares and circles are (tests.support.tiny_locator)."""
    return tiny_model_dirs.locator


@pytest.fixture(scope="session")
def engine_settings(tiny_model_dirs):
    from captioning import EngineSettings

    return EngineSettings.from_env({**tiny_model_dirs.env(), "DEVICE": "cpu"})


@pytest.fixture(scope="session")
def engine(engine_settings):
    from captioning import Engine

    return Engine.load(engine_settings)


@pytest.fixture
async def telegram():
    """A Bot API stand-in on 127.0.0.1 (tests.support.fake_telegram), fresh for each test."""
    from tests.support.fake_telegram import FakeTelegram

    server = await FakeTelegram().start()
    yield server
    await server.stop()


@pytest.fixture
async def executor(engine):
    """The real executor over the tiny trained engine."""
    from tests.support.bot_harness import started_executor

    executor = await started_executor(engine)
    yield executor
    await executor.stop()


@pytest.fixture
async def bot_processes(tmp_path):
    """Starts ``python -m bot`` processes (``await start(env)``); whatever a test leaves
    running, even after a failed assertion, is killed when it ends."""
    from tests.support.processes import BotProcess

    started: list[BotProcess] = []

    async def start(env: dict[str, str], *args: str) -> BotProcess:
        process = await BotProcess.start(env, tmp_path, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        await process.process.wait()
