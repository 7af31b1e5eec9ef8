"""``python -m bot`` as a real process: started with its own environment, its output read as it
comes, and always stopped by the test that started it (the ``bot_processes`` fixture kills
whatever a test left running, even when the test failed half-way)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from tests.support.fake_telegram import FakeTelegram


def bot_env(telegram: FakeTelegram, tiny_model_dirs, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot on the stand-in and the tiny models, with its own TMPDIR."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "WEBHOOK_", "METRICS_", "STATE_", "SHUTDOWN_", "LOG_LEVEL"))
    }
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env.update(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.api_url,
        TELEGRAM_FILE_URL=telegram.file_url,
        STATE_DIR=str(tmp_path / "state"),
        TMPDIR=str(temp),
        **tiny_model_dirs.env(),
        DEVICE="cpu",
    )
    env.update(extra)
    return env


# The models a bot that only describes goes without: it starts a second sooner.
DESCRIBING_ONLY = {"OCR_MODEL": "", "QUESTION_TRANSLATION_MODELS": ""}


def describing_env(telegram: FakeTelegram, tiny_model_dirs, tmp_path: Path, **extra: str) -> dict[str, str]:
    """``bot_env`` for a bot that describes only (DESCRIBING_ONLY). For the stories that never
    read text or take a question."""
    return bot_env(telegram, tiny_model_dirs, tmp_path, **{**DESCRIBING_ONLY, **extra})


class BotProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, *args: str) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait_for_line(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        """The first output line matching ``pattern``; fails at once, with the output, if the
        process exits first."""
        regex = re.compile(pattern)

        async def found() -> re.Match[str]:
            async with self._changed:
                while True:
                    for line in self.lines:
                        if match := regex.search(line):
                            return match
                    if self._reader.done():
                        raise AssertionError(
                            f"exited with {self.process.returncode} before {pattern!r}:\n{self.output}"
                        )
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except TimeoutError:
            raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n{self.output}") from None

    async def until_ready(self, telegram: FakeTelegram, method: str = "getUpdates") -> list[dict]:
        """Until this process's first ``method`` call (the stand-in's calls until then); fails
        at once, with its output, if it dies. Called as soon as it is started: a restart's
        predecessors made such calls too, and the process takes seconds to make its own."""
        made = telegram.count(method)
        waiting = asyncio.ensure_future(telegram.wait_for(method, count=made + 1, timeout=120))
        done, _ = await asyncio.wait({waiting, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            waiting.cancel()
            await self.process.wait()
            raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.output}")
        return waiting.result()

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> str:
        """Signal it, wait for it to exit, and return everything it printed."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        await self.wait(timeout)
        return self.output

    async def wait(self, timeout: float = 60.0) -> int:
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            raise AssertionError(f"still running after {timeout} s:\n{self.output}") from None
        await self._reader
        return self.process.returncode

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
