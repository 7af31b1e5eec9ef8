"""Test describers: the real executor with a test's changes (:class:`Wrapped`), and a describer
that only refuses (:class:`Refusing`). Both are what the bot's ``Describer`` protocol asks for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from captioning import Capabilities, QueueFull

# What a test changes of a result: called with the task and the real result, it gives the result
# the bot sees (or raises, or waits first).
OnResult = Callable[[Any, Any], Awaitable[Any]]
# Whether to refuse the n-th submit (1, 2, ...): the error, and whether it comes at once (as a
# full queue's) or as the result (as an unreachable Ray backend's); None to let it through.
Refuse = Callable[[int], "tuple[BaseException, bool] | None"]


class Wrapped:
    """The real executor (``inner``), noting what each picture was submitted with
    (``submitted``: the task and keywords, refused ones left out; ``tries``: every submit),
    refusing the submits ``refuse`` says to, and passing each result through ``on_result``."""

    def __init__(
        self, inner: Any, *, refuse: Refuse | None = None, on_result: OnResult | None = None
    ) -> None:
        self.inner, self.refuse, self.on_result = inner, refuse, on_result
        self.submitted: list[dict[str, Any]] = []
        self.tries = 0
        self.ready = True

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def submit(self, picture: Any, task: Any = None, **keys: Any) -> Any:
        self.tries += 1
        refusal = self.refuse(self.tries) if self.refuse is not None else None
        if refusal is not None:
            error, at_once = refusal
            if at_once:
                raise error
            return Refusing(error, at_submit=False)
        self.submitted.append({"task": task, **keys})
        return _Ticket(self.inner.submit(picture, task, **keys), task, self.on_result)


class _Ticket:
    def __init__(self, inner: Any, task: Any, on_result: OnResult | None) -> None:
        self.inner, self.task, self.on_result = inner, task, on_result

    def position(self) -> int:
        return self.inner.position()

    async def result(self) -> Any:
        result = await self.inner.result()
        return result if self.on_result is None else await self.on_result(self.task, result)

    async def late(self) -> Any:
        result = await self.inner.late()
        return result if self.on_result is None else await self.on_result(self.task, result)


class Refusing:
    """A describer with no room, or no time: what people hear when the queue says no. Its
    result is the error when it isn't refused ``at_submit``."""

    capabilities = Capabilities(
        ("en", "es"), ("en", "es"), {"describe": 64, "describe_detailed": 64, "answer": 64, "translate": 0}
    )
    ready = True

    def __init__(self, error: BaseException, at_submit: bool = True) -> None:
        self.error, self.at_submit = error, at_submit

    def submit(self, picture: Any, task: Any = None, **keys: Any) -> Refusing:
        if self.at_submit:
            raise self.error
        return self

    def position(self) -> int:
        return 1

    async def result(self) -> Any:
        raise self.error

    async def late(self) -> Any:
        raise self.error


def full_after(count: int) -> Refuse:
    """A queue that fills up: every submit after the first ``count`` is refused at once."""
    return lambda n: (
        (QueueFull("I'm very busy right now; please send the picture again in a minute."), True)
        if n > count
        else None
    )


def refused_first(count: int, error: BaseException, *, at_once: bool = True) -> Refuse:
    """The first ``count`` submits refused with ``error``; the rest go through."""
    return lambda n: (error, at_once) if n <= count else None


def slowed(delay: float = 0.0, gate: asyncio.Event | None = None) -> OnResult:
    """Every result waits for ``gate`` (when given), then ``delay`` seconds."""

    async def wait(task: Any, result: Any) -> Any:
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(delay)
        return result

    return wait
