"""Scale-out: the engine as a Ray Serve application on a real local cluster (CPU only)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import psutil
import pytest

from captioning import EngineSettings
from tests import pictures
from tests.bot_harness import running_bot
from tests.fake_telegram import FakeTelegram

# Everything on 127.0.0.1: in its single-machine mode Ray gives the node the loopback address.
# Ray reads this when it is imported, so it is set before the import.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address():
    """A Ray head started for these tests, stopped after them."""
    import ray._private.ray_constants as constants

    assert not constants.ENABLE_RAY_CLUSTER, "ray was imported before RAY_ENV was set"
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray-")
    # The ray command of this interpreter's installation, whether or not it is on PATH.
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run(
        [
            *ray_cli,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=4",
            "--include-dashboard=false",
            "--object-store-memory=200000000",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, **RAY_ENV},
        timeout=120,
    )
    address = f"127.0.0.1:{port}"
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    yield address
    serve.shutdown()
    ray.shutdown()
    subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(temp, ignore_errors=True)


def deploy(name: str, tiny_model_dirs, replicas: int, **settings: str) -> None:
    from captioning.ray_serve import build_app

    os.environ.update(RAY_MIN_REPLICAS=str(replicas), RAY_MAX_REPLICAS=str(replicas))
    args = {**tiny_model_dirs.settings(), "device": "cpu"}
    serve.run(build_app({**args, **settings}), name=name, route_prefix=None)


@pytest.fixture(scope="module")
def captioning_app(ray_address, tiny_model_dirs):
    # Serve holds each batch open a second: a window in which to kill the replicas mid-batch.
    deploy("captioning", tiny_model_dirs, replicas=2, max_batch_wait_ms="1000")
    yield ray_address
    serve.delete("captioning")


def ray_bot(telegram: FakeTelegram, tmp_path, address: str):
    """The bot as `CAPTION_BACKEND=ray RAY_ADDRESS=... python -m bot` runs it."""
    engine_settings = EngineSettings.from_env({})
    return running_bot(
        telegram, tmp_path / "state", None, engine_settings, caption_backend="ray", ray_address=address
    )


def replica_pids(app: str) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(f"ServeReplica:{app}:" in part for part in (p.info["cmdline"] or []))
    ]


async def description_for(telegram: FakeTelegram, chat_id: int, timeout: float = 120) -> str:
    """The description's text, sent as a reply or edited into the "queued" status reply."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for method in ("editMessageText", "sendMessage"):
            for params in telegram.sent(method, chat_id):
                if "square" in params["text"]:
                    return params["text"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no description in {telegram.sent('sendMessage', chat_id)}")


async def test_a_photo_is_described_through_ray(telegram, captioning_app, tmp_path):
    async with ray_bot(telegram, tmp_path, captioning_app):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.push(telegram.message(6, document=telegram.document(pictures.pdf())))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
        [refusal] = await telegram.wait_for("sendMessage", chat_id=6, timeout=60)
    assert "A red square." in reply["text"] and "Un cuadrado rojo." in reply["text"]
    assert refusal["text"].startswith("This is a PDF document")  # decoded, and refused, on the replica


async def test_a_question_is_answered_through_ray(telegram, captioning_app, tmp_path):
    async with ray_bot(telegram, tmp_path, captioning_app):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("yellow")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
        await telegram.push(telegram.message(5, text="¿de qué color es?", reply_to_message=photo))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5, timeout=60)
    assert replies[-1]["text"] == "Answer: Yellow.\nRespuesta: Amarillo."


async def test_killing_the_replicas_mid_batch_still_gets_the_photo_described(
    telegram, captioning_app, tmp_path
):
    async with ray_bot(telegram, tmp_path, captioning_app):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("blue"))))
        await telegram.wait_for("download", timeout=60)
        await asyncio.sleep(0.5)  # inside the replica's one-second batch window
        killed = replica_pids("captioning")
        assert killed
        for pid in killed:
            psutil.Process(pid).kill()
        text = await description_for(telegram, 5)
    assert "A blue square." in text
    assert not set(killed) & set(replica_pids("captioning"))  # new replicas answered


async def test_an_unreachable_app_is_busy_then_recovers(telegram, ray_address, tiny_model_dirs, tmp_path):
    from captioning.executor import Executor
    from captioning.ray_backend import RayBackend

    backend = RayBackend(ray_address, app_name="captioning-late", reconnect_every_s=0.5)
    assert not backend.connect()
    executor = Executor(EngineSettings.from_env({}), engine_factory=lambda: backend, warmup=False)
    await executor.start()
    try:
        async with running_bot(telegram, tmp_path / "state", executor):
            await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
            [busy] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
            assert busy["text"].startswith("I'm very busy right now")
            await asyncio.to_thread(deploy, "captioning-late", tiny_model_dirs, 1)
            await asyncio.sleep(1)
            await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("green"))))
            replies = await telegram.wait_for("sendMessage", count=2, chat_id=5, timeout=60)
        assert "A green square." in replies[1]["text"]
    finally:
        await executor.stop()
        serve.delete("captioning-late")
