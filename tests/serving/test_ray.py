"""Scale-out: the engine as a Ray Serve application on a real local cluster (CPU only).

The cluster is the tests' own: its own temp folder and ports, its processes remembered by
PID and stopped one by one at the end, and applications with names no real deployment has.
A Ray cluster a person runs on the same machine is neither disturbed nor used.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import itertools
import logging
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from captioning import EngineSettings
from tests.support import pictures
from tests.support.bot_harness import running_bot
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import DESCRIBING_ONLY

if importlib.util.find_spec("ray") is None:  # found, not imported: see RAY_ENV
    pytest.skip("Ray isn't installed (pip install -e '.[ray]')", allow_module_level=True)
psutil = pytest.importorskip("psutil")
# One worker runs them all: the cluster is the module's, started once.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]

# Everything on 127.0.0.1: in its single-machine mode Ray gives the node the loopback
# address. The cluster wants a token, as the README sets one up: these tests and their bots
# join it with the token. Ray reads all this when it is imported, so the fixture sets it
# before the import.
TOKEN = secrets.token_hex(32)
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": TOKEN,
}
TAG = secrets.token_hex(3)
APP = f"captioning-test-{TAG}"


def free_ports(count: int) -> list[int]:
    """Ports free right now. Ray needs each of its ports named up front (it can't bind 0 and
    say which it got), so this is as good as it gets: the sockets are held until all are known."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """A Ray head of the tests' own, and every process it started."""

    def __init__(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="ray-tests-"))
        (self.port, client, dashboard, agent_http, agent_grpc, runtime_env, metrics, node, objects) = (
            free_ports(9)
        )
        self.address = f"127.0.0.1:{self.port}"
        self._address = re.compile(rf"(?<![\d.]){re.escape(self.address)}(?!\d)")  # not :63790
        self.options = [
            f"--port={self.port}",
            f"--ray-client-server-port={client}",
            f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}",
            f"--node-manager-port={node}",
            f"--object-manager-port={objects}",
            f"--temp-dir={self.temp}",
        ]

    def start(self, env: dict[str, str]) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ray.scripts.scripts",  # this interpreter's ray, whether or not it is on PATH
                "start",
                "--head",
                "--num-cpus=4",
                "--include-dashboard=false",
                "--object-store-memory=200000000",
                "--disable-usage-stats",
                *self.options,
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )

    def processes(self) -> list[psutil.Process]:
        """The cluster's processes: those that name its temp folder or address, and their children."""
        found: dict[int, psutil.Process] = {}
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(self.temp) in cmdline or self._address.search(cmdline):
                found[process.pid] = process
                with contextlib.suppress(psutil.Error):
                    found.update((child.pid, child) for child in process.children(recursive=True))
        return list(found.values())

    def stop(self) -> None:
        for _ in range(3):  # workers may be starting as the others go
            processes = self.processes()
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(processes, timeout=10)
        shutil.rmtree(self.temp, ignore_errors=True)

    def replica_pids(self, app: str) -> list[int]:
        return [
            p.pid
            for p in self.processes()
            if any(f"ServeReplica:{app}:" in part for part in (p.cmdline() if p.is_running() else []))
        ]

    def replica_log_lines(self, app: str) -> list[str]:
        lines = []
        for path in self.temp.glob(f"session_*/logs/serve/replica_{app}_*.log"):
            lines += path.read_text(errors="replace").splitlines()
        return lines


@pytest.fixture(scope="module")
def cluster():
    """A Ray head started for these tests, and stopped after them: only its own processes."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in RAY_ENV.items():
            env.setenv(name, value)
        ray = importlib.import_module("ray")
        serve = importlib.import_module("ray.serve")
        import ray._private.ray_constants as constants
        from ray._raylet import AuthenticationMode, get_authentication_mode

        assert not constants.ENABLE_RAY_CLUSTER, "ray was imported before RAY_ENV was set"
        assert get_authentication_mode() == AuthenticationMode.TOKEN
        head = Cluster()
        try:
            import os

            head.start(dict(os.environ))
            ray.init(address=head.address, logging_level="ERROR", log_to_driver=False)
            serve.start(http_options={"host": "127.0.0.1", "port": free_ports(1)[0]})
            yield head
        finally:
            if ray.is_initialized():
                try:
                    serve.shutdown()
                finally:
                    ray.shutdown()
            head.stop()


# An application that only describes, as its engine settings (tests.support.processes).
DESCRIBING = {name.lower(): value for name, value in DESCRIBING_ONLY.items()}


def deploy(name: str, tiny_model_dirs, replicas: int, environment=(), **settings: str) -> None:
    """As `serve run` deploys it: settings from the environment, and as application arguments."""
    from ray import serve

    from captioning.serving.ray_serve import build_app

    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_MIN_REPLICAS", str(replicas))
        env.setenv("RAY_MAX_REPLICAS", str(replicas))
        for variable, value in dict(environment).items():
            env.setenv(variable, value)
        args = {**tiny_model_dirs.settings(more_languages=True), "device": "cpu"}
        serve.run(build_app({**args, **settings}), name=name, route_prefix=None)


def test_stopping_the_tests_cluster_leaves_another_ray_alone():
    """Someone's own Ray on this machine (its default port, its own temp folder) survives the
    tests: they stop only the processes of the cluster they started."""
    theirs = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "ray::raylet",
            "--temp-dir=/tmp/ray",
            "--gcs-address=127.0.0.1:6379",
        ]
    )
    ours = Cluster()
    # ...even where its port starts with ours (a command line can say anything).
    theirs_too = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"--gcs-address={ours.address}1"]
    )
    try:
        assert not {theirs.pid, theirs_too.pid} & {p.pid for p in ours.processes()}
        ours.stop()
        assert theirs.poll() is None and theirs_too.poll() is None and not ours.temp.exists()
    finally:
        for process in (theirs, theirs_too):
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def captioning_app(cluster, tiny_model_dirs):
    from ray import serve

    # Serve holds each batch open a second: the tests see a batch start in the replica's log.
    # CPU replicas in int8, as `QUANTIZE=int8 serve run ...` deploys them: the same outputs.
    # Their int8 models are kept in the cluster's own folder (QUANTIZED_CACHE_DIR), not in ~/.cache.
    int8 = {"QUANTIZE": "int8", "QUANTIZED_CACHE_DIR": str(cluster.temp / "int8")}
    deploy(APP, tiny_model_dirs, replicas=1, environment=int8, max_batch_wait_ms="1000")
    yield cluster
    serve.delete(APP)


def ray_bot(telegram: FakeTelegram, tmp_path, address: str):
    """The bot as `CAPTION_BACKEND=ray RAY_ADDRESS=... RAY_APP_NAME=... python -m bot` runs it."""
    engine_settings = EngineSettings.from_env({})
    return running_bot(
        telegram,
        tmp_path / "state",
        None,
        engine_settings,
        caption_backend="ray",
        ray_address=address,
        ray_app_name=APP,
    )


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
    async with ray_bot(telegram, tmp_path, captioning_app.address):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.push(telegram.message(6, document=telegram.document(pictures.pdf())))
        reply = await description_for(telegram, 5)
        [refusal] = await telegram.wait_for("sendMessage", chat_id=6, timeout=60)
    assert "A red square." in reply and "Un cuadrado rojo." in reply
    assert refusal["text"].startswith("This is a PDF document")  # decoded, and refused, on the replica


async def test_the_replicas_take_their_settings_from_the_deploying_environment(captioning_app):
    from captioning.serving.ray_backend import RayBackend

    backend = RayBackend(captioning_app.address, app_name=APP)
    assert await asyncio.to_thread(backend.connect)
    # QUANTIZE=int8 reached the replicas: their engine sizes its batches for int8 on the CPU.
    assert (backend.capabilities.batch_size, backend.capabilities.languages) == (4, ("en", "es", "fr", "pt"))


async def test_a_chats_languages_are_served_through_ray(telegram, captioning_app, tmp_path):
    from tests.support.fake_telegram import command

    async with ray_bot(telegram, tmp_path, captioning_app.address):
        await telegram.push(telegram.message(7, text="/lang en fr", entities=command("/lang en fr")))
        await telegram.wait_for("sendMessage", chat_id=7, timeout=60)
        await telegram.push(telegram.message(7, photo=telegram.photo(pictures.jpeg("green"))))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=7, timeout=60)
    assert (
        replies[1]["text"]
        == "Automatic description, may be wrong\nEnglish: A green square.\nFrançais: Un carré vert."
    )


async def test_a_question_is_answered_through_ray(telegram, captioning_app, tmp_path):
    async with ray_bot(telegram, tmp_path, captioning_app.address):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("yellow")))
        await telegram.push(photo)
        await description_for(telegram, 5)
        await telegram.push(telegram.message(5, text="¿de qué color es?", reply_to_message=photo))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5, timeout=60)
    assert replies[-1]["text"] == "Answer: Yellow.\nRespuesta: Amarillo."


async def test_the_text_in_a_picture_is_read_through_ray(telegram, captioning_app, tmp_path):
    import io

    from tests.support.fake_telegram import command
    from tests.support.tiny_reader import sign

    buffer = io.BytesIO()
    sign("BUS 42\nCITY CENTRE").save(buffer, "PNG")
    async with ray_bot(telegram, tmp_path, captioning_app.address):
        photo = telegram.message(8, photo=telegram.photo(buffer.getvalue()))
        await telegram.push(
            telegram.message(8, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        [text] = await telegram.wait_for("sendMessage", chat_id=8, timeout=60)
    assert text["text"] == "Text in the picture:\nBUS 42\nCITY CENTRE"  # read on a replica, in int8


async def test_a_bot_process_joins_the_cluster_with_the_token_in_its_env_file(
    telegram, captioning_app, bot_processes, tiny_model_dirs, tmp_path
):
    """The cluster wants a token (RAY_AUTH_MODE=token): `python -m bot` joins it with the
    RAY_AUTH_TOKEN of its .env file, which Ray itself never reads."""
    from tests.support.processes import bot_env

    env = bot_env(telegram, tiny_model_dirs, tmp_path, CAPTION_BACKEND="ray")
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(name, None)  # the .env file alone has the token
    env.update(RAY_ADDRESS=captioning_app.address, RAY_APP_NAME=APP)
    (tmp_path / ".env").write_text(f"RAY_AUTH_TOKEN={TOKEN}\n")
    bot = await bot_processes(env)
    await bot.until_ready(telegram)
    await telegram.push(telegram.message(9, photo=telegram.photo(pictures.jpeg("blue"))))
    assert "A blue square." in await description_for(telegram, 9)
    await bot.stop()


def padded_png(color: str, padding: int) -> bytes:
    """A small picture whose size in bytes is its own: a text chunk of ``padding`` bytes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("padding", "x" * padding)
    return pictures.encode(pictures.solid(color), "PNG", pnginfo=info)


async def test_a_request_the_models_fail_on_fails_alone_in_its_replica_batch(captioning_app):
    """The replicas split and retry a failing batch, as the local executor does: a question
    in a language they have no model for (French) fails in the models' run, and the other
    questions of the same replica batch are still answered."""
    from captioning import InferenceError
    from captioning.questions import Question
    from captioning.serving.ray_backend import RayBackend
    from captioning.tasks import Answer

    backend = RayBackend(captioning_app.address, app_name=APP)
    assert await asyncio.to_thread(backend.connect)
    colors = ["red", "green", "blue", "yellow"]
    questions = [Question("what color is it?"), Question("¿de qué color es?", "es")] * 2
    bad = 1
    questions[bad] = Question("de quelle couleur ?", "fr")
    tasks = [Answer(q, ("es",)) for q in questions]
    for attempt in range(4):  # until the bad one shares a replica batch (the batch may close early)
        # Sizes no other test sends, whose sums tell every batch of them apart in the log.
        data = [padded_png(c, 20_000 * (attempt + 2) + 1000 * 2**i) for i, c in enumerate(colors)]
        batches = {
            f"(answer {n}; {sum(len(data[i]) for i in group)} bytes)": group
            for n in range(1, 5)
            for group in itertools.combinations(range(4), n)
        }
        outcomes = await asyncio.to_thread(backend.run, "answer", data, tasks)
        assert isinstance(outcomes[bad], InferenceError)
        answers = [getattr(o, "english", o) for i, o in enumerate(outcomes) if i != bad]
        assert answers == [c for i, c in enumerate(colors) if i != bad]
        assert outcomes[3].translations == {"es": "amarillo"}
        lines = captioning_app.replica_log_lines(APP)
        # A set: a replica's log line may be in more than one of its log files.
        ran = {group for line in lines for tail, group in batches.items() if tail in line}
        assert sorted(i for group in ran for i in group) == [0, 1, 2, 3]
        if any(bad in group and len(group) > 1 for group in ran):
            return
    pytest.fail(f"the failing question never shared a replica batch: {ran}")


async def test_a_chat_model_describes_and_answers_through_ray(cluster, tiny_model_dirs):
    from ray import serve

    from captioning import Answer, Describe, Question
    from captioning.serving.ray_backend import RayBackend

    app = f"{APP}-chat"
    deploy(app, tiny_model_dirs, replicas=1, caption_model=str(tiny_model_dirs.chat))
    try:
        backend = RayBackend(cluster.address, app_name=app)
        assert await asyncio.to_thread(backend.connect)
        photos = [pictures.jpeg("red"), pictures.jpeg("blue")]
        described = await asyncio.to_thread(backend.run, "describe", photos, [Describe(False, ("es",))] * 2)
        asked = [Answer(Question("¿de qué color es?", "es"), ("es",))] * 2
        answered = await asyncio.to_thread(backend.run, "answer", photos, asked)
    finally:
        serve.delete(app)
    assert [(d.english, d.text("es")) for d in described] == [
        ("a red square.", "un cuadrado rojo."),
        ("a blue square.", "un cuadrado azul."),
    ]
    assert [(a.english, a.text("es")) for a in answered] == [("red", "rojo"), ("blue", "azul")]


async def test_killing_the_replicas_mid_batch_still_gets_the_photo_described(
    telegram, captioning_app, tmp_path, caplog
):
    cluster = captioning_app
    caplog.set_level(logging.WARNING, logger="captioning.serving.ray_backend")
    # Four large pictures (each takes a while to decode on the replica), of a total size no
    # other test sends: the replica's log names their batch by it, as the batch starts.
    big = [
        pictures.encode(pictures.Image.new("RGB", (6000 + i, 6000), (30, 40, 220)), "PNG") for i in range(4)
    ]
    sizes = [len(data) for data in big]
    # Any batch of the four (the replica may take them in more than one), told apart by its size.
    batches = {
        f"(describe {len(group)}; {sum(sizes[i] for i in group)} bytes)": group
        for n in range(1, 5)
        for group in itertools.combinations(range(4), n)
    }
    async with ray_bot(telegram, tmp_path, cluster.address):
        for i, data in enumerate(big):
            await telegram.push(telegram.message(50 + i, document=telegram.document(data, name="big.png")))
        deadline = time.monotonic() + 120
        seen = None
        while seen is None:
            assert time.monotonic() < deadline, "no batch started"
            for line in cluster.replica_log_lines(APP):
                seen = next((group for tail, group in batches.items() if tail in line), None)
                if seen:
                    break
            await asyncio.sleep(0.02)
        killed = cluster.replica_pids(APP)  # mid-batch: kill every replica
        assert killed
        for pid in killed:
            psutil.Process(pid).kill()
        killed_at = time.time()
        texts = [await description_for(telegram, 50 + i) for i in range(4)]
    assert all("A blue square." in text for text in texts)
    lost = [r.getMessage() for r in caplog.records if "Replica lost mid-request" in r.getMessage()]
    assert lost  # the pictures were sent again
    for i in seen:  # the batch that was running when its replica died was answered after it
        answered = [
            c.at
            for c in telegram.calls
            if c.method in ("sendMessage", "editMessageText")
            and int(c.params.get("chat_id", 0)) == 50 + i
            and "square" in c.params.get("text", "")
        ]
        assert min(answered) > killed_at
    assert not set(killed) & set(cluster.replica_pids(APP))  # from new replicas


async def test_an_app_unreachable_or_gone_is_busy_within_seconds_then_recovers(
    telegram, cluster, tiny_model_dirs, tmp_path
):
    """Not deployed yet: "busy", /healthz says why, and the first photo after it is deployed is
    described. Deleted once connected: busy within seconds, not after REQUEST_TIMEOUT_S (120 s),
    and described again once it is back. One app, deployed twice, tells both stories."""
    from ray import serve

    from captioning import Busy
    from captioning.serving.executor import Executor
    from captioning.serving.ray_backend import RayBackend
    from captioning.tasks import Describe

    late = f"captioning-late-{TAG}"
    backend = RayBackend(cluster.address, app_name=late, reconnect_every_s=0.5, connect_timeout_s=10)
    assert not backend.connect()
    executor = Executor(EngineSettings.from_env({}), engine_factory=lambda: backend, warmup=False)
    await executor.start()
    try:
        async with running_bot(telegram, tmp_path / "state", executor) as runner:
            assert runner.parts()["models"] == "the Ray Serve application can't be reached"
            await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
            [busy] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
            assert busy["text"].startswith("I'm very busy right now")
            await asyncio.to_thread(deploy, late, tiny_model_dirs, 1, **DESCRIBING)
            # The backend reconnects on the first batch at least 0.5 s after its last try.
            for _ in range(60):
                sent = telegram.count("sendMessage", 5)
                await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("green"))))
                [*_, reply] = await telegram.wait_for("sendMessage", count=sent + 1, chat_id=5, timeout=60)
                if "square" in reply["text"]:
                    break
                await asyncio.sleep(0.5)
            assert "A green square." in reply["text"]
            assert runner.parts()["models"] is None

        await asyncio.to_thread(serve.delete, late)  # gone, once connected
        started = time.monotonic()
        with pytest.raises(Busy):
            await executor.submit(pictures.jpeg("red"), Describe()).result()
        assert time.monotonic() - started < 10  # not REQUEST_TIMEOUT_S (120 s)
        assert not backend.connected  # /healthz says so, and the next batch reconnects
        await asyncio.to_thread(deploy, late, tiny_model_dirs, 1, **DESCRIBING)
        described = None
        for _ in range(60):  # the backend reconnects on a batch at least 0.5 s after its last try
            with contextlib.suppress(Busy):
                described = (await executor.submit(pictures.jpeg("green"), Describe()).result()).english
                break
            await asyncio.sleep(0.5)
        assert described == "a green square" and backend.connected
    finally:
        await executor.stop()
        with contextlib.suppress(Exception):
            serve.delete(late)
