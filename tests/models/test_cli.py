"""``python -m captioning``: every kind of file in one run, JSON or text, honest exit codes."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captioning.__main__ import main
from tests.support import pictures
from tests.support.tiny_models import caption_for, translation_for


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory) -> Path:
    """One file of every kind the intake knows, good and bad, under lying names."""
    folder = tmp_path_factory.mktemp("inbox")
    for name, make, _ in pictures.GOOD + pictures.BAD:
        (folder / name).write_bytes(make())
    return folder


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captioning", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=240,
        cwd=cwd,
    )


@pytest.mark.filterwarnings(
    "error::pytest.PytestUnhandledThreadExceptionWarning", "error::pytest.PytestUnraisableExceptionWarning"
)
def test_json_describes_a_folder_of_every_kind_of_file(picture_folder, model_env, capfd, caplog):
    # capfd: what reaches the file descriptors, whoever writes it (a library's print too).
    status = main(["--json", str(picture_folder)])
    result = capfd.readouterr()
    assert status == 1, result.err  # some files were rejected
    entries = json.loads(result.out)  # stdout is the JSON and nothing else

    expected_files = sorted(name for name, _, _ in pictures.GOOD + pictures.BAD)
    assert [Path(e["file"]).name for e in entries] == expected_files

    by_name = {Path(e["file"]).name: e for e in entries}
    for name, _, caption in pictures.GOOD:
        color = caption.split()[1]
        assert by_name[name] == {
            "file": str(picture_folder / name),
            "english": caption_for(color),
            "spanish": translation_for(color),
            "translations": {"es": translation_for(color)},
        }, name
    for name, _, word in pictures.BAD:
        assert set(by_name[name]) == {"file", "error"}, name
        assert word.lower() in by_name[name]["error"].lower(), name
    assert "Traceback" not in result.err
    # Nor in a log record, which pytest holds rather than the CLI's stderr.
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_every_file_described_exits_zero_with_labelled_text(tmp_path, model_env, capsys):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    (tmp_path / "blue.png").write_bytes(pictures.opaque_rgba_png("blue"))
    status = main([str(tmp_path / "red.jpg"), str(tmp_path / "blue.png")])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines() == [
        str(tmp_path / "red.jpg"),
        "  English: a red square",
        "  Spanish: un cuadrado rojo",
        str(tmp_path / "blue.png"),
        "  English: a blue square",
        "  Spanish: un cuadrado azul",
    ]


def test_batches_smaller_than_the_input_keep_the_order(tmp_path, model_env, capsys):
    colors = ["yellow", "red", "green", "blue", "white"]
    files = []
    for i, color in enumerate(colors):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(pictures.encode(pictures.solid(color), "PNG"))
    assert main(["--json", "--batch-size", "2", *map(str, files)]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["english"] for e in entries] == [caption_for(c) for c in colors]


def test_a_missing_file_is_a_rejection_not_a_crash(tmp_path, model_env, capsys):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    status = main(["--json", str(tmp_path / "red.jpg"), str(tmp_path / "gone.jpg")])
    entries = json.loads(capsys.readouterr().out)
    assert status == 1
    assert entries[0]["english"] == "a red square"
    assert entries[1] == {"file": str(tmp_path / "gone.jpg"), "error": "No such file."}


@pytest.mark.process
def test_a_model_that_cant_be_loaded_is_one_line_on_stderr(tmp_path, model_env):
    env = {**model_env, "CAPTION_MODEL": str(tmp_path / "nowhere")}
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    result = run_cli("--json", str(tmp_path / "red.jpg"), env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "caption model" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_caption_model_of_a_family_no_adapter_supports_is_one_line_and_exit_2(tmp_path, model_env, capsys):
    # A speech model's folder given as CAPTION_MODEL: refused by its config before any weight
    # is read. (Once, an Idefics3 folder died in BLIP-2's forward pass with a 30-line
    # ValueError; now the chat models' adapter takes it: tests/models/test_chat.py.)
    folder = tmp_path / "whisper"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "whisper"}')
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    assert main(["--caption-model", str(folder), str(tmp_path / "red.jpg")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(
        f"error: The caption model {str(folder)!r} (CAPTION_MODEL) is of type 'whisper'"
    )
    assert "BLIP-2" in captured.err and "chat vision-language models" in captured.err


def test_a_bad_setting_is_a_usage_error(tmp_path, model_env, capsys):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    assert main(["--device", "quantum", str(tmp_path / "red.jpg")]) == 2
    assert "DEVICE" in capsys.readouterr().err


def test_no_arguments_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_ask_answers_a_question_about_each_picture(tmp_path, model_env, capsys):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    (tmp_path / "blue.png").write_bytes(pictures.opaque_rgba_png("blue"))
    status = main(
        ["--json", "--ask", "what color is it?", str(tmp_path / "red.jpg"), str(tmp_path / "blue.png")]
    )
    entries = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [(e["english"], e["spanish"]) for e in entries] == [("red", "rojo"), ("blue", "azul")]


def test_ask_in_spanish_goes_through_the_question_model(tmp_path, model_env, capsys):
    (tmp_path / "green.jpg").write_bytes(pictures.jpeg("green"))
    assert main(["--json", "--ask", "¿de qué color es?", str(tmp_path / "green.jpg")]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["english"], entry["spanish"]) == ("green", "verde")


def test_an_empty_question_is_a_usage_error(tmp_path, model_env, capsys):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    assert main(["--ask", "   ", str(tmp_path / "red.jpg")]) == 2
    assert "--ask needs a question" in capsys.readouterr().err


@pytest.mark.process
def test_missing_files_are_said_at_once_before_any_model_loads(tmp_path):
    # No model could load here (the caption model is nowhere): a run with only missing files
    # never gets that far, and says what is wrong with each file straight away.
    env = {"CAPTION_MODEL": str(tmp_path / "nowhere"), "DEVICE": "cpu"}
    result = run_cli(str(tmp_path / "gone.jpg"), str(tmp_path / "folder-file.png"), env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'gone.jpg'}: not described: No such file.",
        f"{tmp_path / 'folder-file.png'}: not described: No such file.",
    ]


@pytest.mark.process
def test_an_unreachable_hub_is_one_line_at_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    env = {
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_HOME": str(tmp_path / "hf"),
        "CAPTION_MODEL": "Salesforce/blip2-opt-2.7b",
        "DEVICE": "cpu",
    }
    started = time.monotonic()
    result = run_cli(str(tmp_path / "red.jpg"), env=env, cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: Could not download the caption model Salesforce/blip2-opt-2.7b: the Hugging Face hub "
        f"(http://127.0.0.1:{port}) can't be reached. Check the network, or set CAPTION_MODEL to a local "
        "folder, or set HF_HUB_OFFLINE=1 to use only the local cache."
    ]


@pytest.mark.process
def test_offline_without_the_model_in_the_cache_says_so(tmp_path):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "CAPTION_MODEL": "Salesforce/blip2-opt-2.7b",
    }
    result = run_cli(str(tmp_path / "red.jpg"), env=env, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "not in the local Hugging Face cache" in line and "HF_HUB_OFFLINE" in line


def test_the_cli_reads_dot_env_like_the_bot(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    # The bot's .env, its token and all, in the folder it runs in; nothing in the environment.
    for name in (*tiny_model_dirs.env(), "TRANSLATION_MODEL", "QUESTION_TRANSLATION_MODEL", "DEVICE"):
        monkeypatch.delenv(name, raising=False)
    lines = [f"{k}={v}" for k, v in tiny_model_dirs.env().items()] + ["DEVICE=cpu", "TELEGRAM_BOT_TOKEN=1:x"]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    monkeypatch.chdir(tmp_path)
    status = main(["--json", "red.jpg"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert json.loads(captured.out)[0]["english"] == "a red square"


def test_verbose_says_how_long_each_step_took(tmp_path, model_env, capsys, caplog):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    with caplog.at_level("INFO", logger="captioning"):
        assert main(["-v", str(tmp_path / "red.jpg")]) == 0
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Timings:")]
    assert [part.split()[0] for part in line.removeprefix("Timings: ").split(", ")] == [
        "load",
        "decode",
        "caption",
        "translate",
    ]


def test_a_refusal_speaks_to_a_cli_user(tmp_path, model_env, capsys):
    (tmp_path / "notes.png").write_bytes(b"just text, not a picture" * 10)
    assert main([str(tmp_path / "notes.png")]) == 1
    out = capsys.readouterr().out
    assert "Use a JPEG, PNG" in out and "Send" not in out


def test_the_tiny_model_demo_prints_settings_that_work(tiny_model_dirs, tmp_path, monkeypatch, capsys):
    from tests.support import tiny_models

    # The demo (python -m tests.support.tiny_models FOLDER) reuses models already built by the
    # same code: the tests' own, here. Its settings then go into a .env, as a user puts them.
    assert tiny_models.main([str(tiny_model_dirs.caption.parent.parent)]) == 0
    printed = capsys.readouterr().out
    settings = dict(line.split("=", 1) for line in printed.splitlines() if re.match(r"^[A-Z_]+=", line))
    assert settings["CAPTION_MODEL"] == str(tiny_model_dirs.caption)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    for name in settings:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    status = main(["red.jpg"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "English: a red square" in captured.out


async def run_cli_async(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "captioning",
        *args,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.process
async def test_a_first_download_is_announced_with_its_size_and_the_next_run_uses_the_cache(
    tiny_model_dirs, tmp_path
):
    from tests.support.fake_hub import FakeHub

    hub = await FakeHub().start()
    hub.add("tiny/caption", tiny_model_dirs.caption)
    hub.add("tiny/translation", tiny_model_dirs.translation)
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    env = {
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "CAPTION_MODEL": "tiny/caption",
        "TRANSLATION_MODELS": "es=tiny/translation",
        "DEVICE": "cpu",
    }
    try:
        first = await run_cli_async("red.jpg", env=env, cwd=tmp_path)
        downloads = sum(r.startswith("GET /tiny/") for r in hub.requests)
        second = await run_cli_async("red.jpg", env=env, cwd=tmp_path)
        missing = await run_cli_async("red.jpg", env={**env, "CAPTION_MODEL": "tiny/nothing"}, cwd=tmp_path)
    finally:
        await hub.stop()
    code, out, err = first
    assert code == 0, err
    assert "English: a red square" in out
    size = sum(p.stat().st_size for p in tiny_model_dirs.caption.iterdir() if p.is_file())
    from captioning.hub import size_text

    assert f"Downloading tiny/caption (about {size_text(size)}) once; later runs use the cache." in err
    assert downloads >= 3  # the files themselves
    code, out, err = second
    assert code == 0 and "Downloading" not in err and "English: a red square" in out
    assert sum(r.startswith("GET /tiny/") for r in hub.requests) == downloads  # nothing fetched again
    code, out, err = missing
    assert code == 2
    assert err.strip().splitlines() == [
        "error: There is no caption model 'tiny/nothing' on the Hugging Face hub, or it is private: "
        "check CAPTION_MODEL."
    ]


def test_lang_picks_among_the_configured_translations(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    for name, value in {**tiny_model_dirs.env(more_languages=True), "DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    assert main(["--json", "--lang", "fr,pt", str(tmp_path / "red.jpg")]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry == {
        "file": str(tmp_path / "red.jpg"),
        "english": "a red square",
        "translations": {"fr": "un carré rouge", "pt": "um quadrado vermelho"},
    }
    assert main([str(tmp_path / "red.jpg")]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  English: a red square",
        "  Spanish: un cuadrado rojo",
        "  French: un carré rouge",
        "  Portuguese: um quadrado vermelho",
    ]
    assert main(["--lang", "de", str(tmp_path / "red.jpg")]) == 2
    assert "--lang: de not configured; TRANSLATION_MODELS has es, fr, pt." in capsys.readouterr().err


def test_read_alone_loads_neither_the_caption_model_nor_the_translators(
    tmp_path, model_env, monkeypatch, capsys
):
    from tests.support.tiny_reader import sign

    # A first "--read menu.jpg" must not download BLIP-2 and Marian (some 15 GB) it won't use.
    nowhere = str(tmp_path / "not-downloaded")
    monkeypatch.setenv("CAPTION_MODEL", nowhere)
    monkeypatch.setenv("TRANSLATION_MODELS", f"es={nowhere}")
    monkeypatch.setenv("QUESTION_TRANSLATION_MODELS", f"es={nowhere}")
    (tmp_path / "menu.png").write_bytes(pictures.encode(sign("OPEN 24 HOURS"), "PNG"))
    assert main(["--read", str(tmp_path / "menu.png")]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "menu.png"), "  Text: OPEN 24 HOURS"]
    assert main(["--describe", "--read", str(tmp_path / "menu.png")]) == 2
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("error: ") and "caption model" in error


def test_read_with_reading_off_says_so_in_one_line(tmp_path, model_env, monkeypatch, capsys):
    monkeypatch.setenv("OCR_MODEL", "")
    (tmp_path / "menu.png").write_bytes(pictures.jpeg("red"))
    assert main(["--read", str(tmp_path / "menu.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["error: --read: reading text is off here (OCR_MODEL is empty)."]
