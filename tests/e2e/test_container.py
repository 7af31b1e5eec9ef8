"""The image and compose.yaml as an operator runs them: ``podman-compose up``, with podman.

The image is built from the Containerfile by ``.ci/build-image`` (``CONTAINER_IMAGE``, default
``localhost/describe-bot:ci``). The Bot API stand-in runs here, outside the container, which
reaches it at ``host.containers.internal``; the tiny models are mounted read-only. Where podman
or the image is missing these tests are skipped, unless ``REQUIRE_CONTAINER_TESTS=1`` (as in
``.ci/run``), which makes that a failure. ``pytest -m "not container"`` leaves them out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support import pictures
from tests.support.fake_telegram import FakeTelegram
from tests.support.proxies import Front

# One worker runs them all: the containers are the module's.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CONTAINER_IMAGE", "localhost/describe-bot:ci")
GRACE_S = 10
TOKEN = FakeTelegram().token


def podman_compose() -> str | None:
    """podman-compose from the project's [dev] install, or on PATH."""
    here = Path(sys.executable).parent / "podman-compose"
    return str(here) if here.exists() else shutil.which("podman-compose")


def missing() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (.ci/run installs it with apt)"
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        return f"there is no image {IMAGE}: .ci/build-image builds it"
    if podman_compose() is None:
        return "podman-compose is not installed (it comes with the [dev] extra)"
    return None


# Session-scoped, so that it comes before the (session-scoped) tiny models: a skip costs nothing.
@pytest.fixture(scope="session", autouse=True)
def podman_and_the_image():
    if why := missing():
        if os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
            pytest.fail(f"REQUIRE_CONTAINER_TESTS=1, but {why}")
        pytest.skip(why)


def podman(*args: str, check: bool = True) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}")
    return result.stdout


def image_config() -> dict:
    return json.loads(podman("image", "inspect", IMAGE))[0]["Config"]


def shipped_env(folder: Path) -> None:
    """.env.example as the README says: copied to .env, with a token set."""
    text = (ROOT / ".env.example").read_text()
    (folder / ".env").write_text(text.replace("\nTELEGRAM_BOT_TOKEN=\n", f"\nTELEGRAM_BOT_TOKEN={TOKEN}\n"))


class Project:
    """compose.yaml in a folder of its own (with .env next to it, as an operator has it) plus
    the test's override: the image built for the test, the stand-in, the tiny models."""

    def __init__(self, folder: Path, override: dict) -> None:
        self.folder, self.name = folder, f"describe-bot-test-{uuid.uuid4().hex[:8]}"
        shutil.copy(ROOT / "compose.yaml", folder / "compose.yaml")
        shipped_env(folder)
        (folder / "test.yaml").write_text(yaml.safe_dump(override))

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [podman_compose(), "-p", self.name, "-f", "compose.yaml", "-f", "test.yaml", *args]
        return subprocess.run(command, cwd=self.folder, capture_output=True, text=True, timeout=300)

    @property
    def container(self) -> str:
        return f"{self.name}_bot_1"

    def state(self) -> dict:
        return json.loads(podman("container", "inspect", self.container))[0]

    def volume(self, name: str) -> Path:
        return Path(podman("volume", "inspect", f"{self.name}_{name}", "--format", "{{.Mountpoint}}").strip())

    def logs(self) -> str:
        result = subprocess.run(["podman", "logs", self.container], capture_output=True, text=True)
        return result.stdout + result.stderr


async def until_ready(telegram: FakeTelegram, project: Project, timeout: float = 180) -> None:
    """The bot's first getUpdates; fails at once, with its logs, if the container stops."""
    deadline = time.monotonic() + timeout
    while not telegram.count("getUpdates"):
        state = await asyncio.to_thread(project.state)
        if not state["State"]["Running"]:
            raise AssertionError(f"the container exited with {state['State']['ExitCode']}:\n{project.logs()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no getUpdates in {timeout} s:\n{project.logs()}")
        await asyncio.sleep(0.5)


async def test_compose_runs_the_image_which_describes_stays_healthy_and_stops_on_sigterm(
    telegram, tiny_model_dirs, tmp_path
):
    front = await Front(to_port=telegram.port, host="0.0.0.0").start()
    stand_in = f"http://host.containers.internal:{front.port}"
    models = "/data/models/tiny"
    # A copy anyone may read: the container's user is not the one who built them.
    tiny = tmp_path / "tiny-models"
    shutil.copytree(Path(tiny_model_dirs.caption).parent, tiny)
    for path in tiny.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    bot = {
        "image": IMAGE,
        "environment": {
            "TELEGRAM_API_URL": f"{stand_in}/bot",
            "TELEGRAM_FILE_URL": f"{stand_in}/file/bot",
            "CAPTION_MODEL": f"{models}/caption",
            "TRANSLATION_MODELS": f"es={models}/translation",
            "QUESTION_TRANSLATION_MODELS": f"es={models}/question",
            "OCR_MODEL": f"{models}/reader",
            "OCR_DETAILED_TASK": "",  # the tiny reader learned <OCR> only (tests.support.tiny_models)
            "DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
            "SHUTDOWN_GRACE_S": str(GRACE_S),
        },
        "volumes": [f"{tiny}:{models}:ro"],
    }
    (tmp_path / "project").mkdir()
    project = Project(tmp_path / "project", {"services": {"bot": bot}})
    try:
        up = await asyncio.to_thread(project.compose, "up", "-d", "--no-build", "bot")
        assert up.returncode == 0, up.stdout + up.stderr
        await until_ready(telegram, project)

        # A photo sent to the stand-in gets its description from the bot in the container.
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
        assert "A red square." in reply["text"] and "Un cuadrado rojo." in reply["text"]

        # The image's HEALTHCHECK itself, run as the engine runs it: /healthz says 200.
        # (podman exits non-zero, and says "unhealthy", when the check fails)
        health = await asyncio.to_thread(podman, "healthcheck", "run", project.container)
        assert "unhealthy" not in health

        # Every process in the container is the image's own user, not root.
        users = podman("top", project.container, "user", "huser").split("\n")[1:]
        assert {tuple(line.split()) for line in users if line.strip()} == {("describe-bot", "10001")}
        # Nothing was written to the temp folders either (compose's tmpfs, podman's own).
        found = podman("exec", project.container, "find", "/tmp", "/var/tmp", "-type", "f")
        assert found.strip() == ""

        # SIGTERM (compose's stop): the work in flight gets SHUTDOWN_GRACE_S, then exit 0.
        started = time.monotonic()
        stop = await asyncio.to_thread(project.compose, "stop", "bot")
        took = time.monotonic() - started
        assert stop.returncode == 0, stop.stdout + stop.stderr
        state = project.state()
        logs = project.logs()
        assert state["State"]["ExitCode"] == 0, logs
        assert took < GRACE_S + 5, (took, logs)
        assert "Shutting down: finishing the work in flight (up to 10 s)" in logs
        assert "Traceback" not in logs and "Read-only file system" not in logs, logs
        assert TOKEN not in logs

        # compose's read_only held (the image's own files can't be written), and the bot worked
        # under it: it wrote only to its volumes, and as its own user.
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        written = [p for p in project.volume("state").rglob("*")]
        assert "bot.sqlite3" in {p.name for p in written}
        assert {p.stat().st_uid for p in written} == {10001}
        assert [p.name for p in project.volume("models").iterdir()] == ["tiny"]  # the mount only
    finally:
        down = await asyncio.to_thread(project.compose, "down", "-v", "-t", "0")
        await front.stop()
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.parametrize("profile", [[], ["--profile", "cluster"]])
def test_compose_yaml_reads_and_fits_the_image(tmp_path, profile):
    """As far as tools here can check it: podman-compose reads it (with .env.example as .env),
    and its volumes, environment and ports fit the image the Containerfile builds."""
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shipped_env(tmp_path)
    ray_token = "0f" * 32  # as the README has it added to .env for the cluster
    env = (tmp_path / ".env").read_text()
    (tmp_path / ".env").write_text(env.replace("\nRAY_AUTH_TOKEN=\n", f"\nRAY_AUTH_TOKEN={ray_token}\n"))
    result = subprocess.run(
        [podman_compose(), *profile, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(result.stdout)
    image = image_config()
    bot = config["services"]["bot"]
    assert {v.split(":")[1] for v in bot["volumes"]} == set(image["Volumes"])
    assert bot["environment"]["STATE_DIR"] in image["Volumes"]
    assert bot["environment"]["HF_HOME"] in image["Volumes"]
    assert f"METRICS_PORT={bot['environment']['METRICS_PORT']}" in image["Env"]
    assert bot["env_file"] == [".env"] and bot["read_only"] is True
    assert bot["build"]["dockerfile"] == "Containerfile" and (ROOT / "Containerfile").exists()
    # SHUTDOWN_GRACE_S (30 s by default) fits in the stop timeout, with room.
    assert int(bot["stop_grace_period"].removesuffix("s")) > 30
    for name, service in config["services"].items():
        assert "ports" not in service, name  # nothing published: /healthz and Ray stay inside
    if profile:
        assert set(config["services"]) == {"bot", "ray-head", "ray-worker"}
        assert config["networks"]["ray"]["internal"] is True
        assert config["services"]["ray-head"]["networks"] == ["ray"]
        # Ray's token authentication on both nodes, with the token of .env (the head and the bot
        # read .env themselves; the worker is handed it).
        head, worker = config["services"]["ray-head"], config["services"]["ray-worker"]
        assert head["environment"]["RAY_AUTH_MODE"] == worker["environment"]["RAY_AUTH_MODE"] == "token"
        assert head["env_file"] == [".env"] and worker["environment"]["RAY_AUTH_TOKEN"] == ray_token
    else:
        assert set(config["services"]) == {"bot"}
