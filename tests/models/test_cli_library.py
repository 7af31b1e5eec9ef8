"""``python -m captioning`` on a whole library: results as each picture is done, a run that goes
on where the last one stopped, a progress bar on a terminal only, Ctrl-C that waits for the
batch in flight, and memory that doesn't grow with the folder."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from pathlib import Path

import pytest

from captioning.__main__ import main
from tests.support import pictures
from tests.support.library import cli_command, peak_memory_kib, photo_library, tall_strips
from tests.support.tiny_models import translation_for


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """200 pictures, and the caption each must get."""
    folder = tmp_path_factory.mktemp("library")
    return folder, photo_library(folder, 200)


def test_jsonl_gives_each_picture_its_line_with_the_hash_of_its_file(tmp_path, model_env, capsys):
    names = photo_library(tmp_path, 3)
    (tmp_path / "notes.png").write_bytes(b"Just some text, not a picture.\n" * 10)
    assert main(["--jsonl", "--batch-size", "2", str(tmp_path)]) == 1
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(e["file"]).name for e in entries] == [*sorted(names), "notes.png"]
    for entry, (name, caption) in zip(entries, sorted(names.items()), strict=False):
        color = caption.split()[1]
        assert entry == {
            "file": str(tmp_path / name),
            "english": caption,
            "spanish": translation_for(color),
            "translations": {"es": translation_for(color)},
            "sha256": hashlib.sha256((tmp_path / name).read_bytes()).hexdigest(),
        }
    assert set(entries[-1]) == {"file", "error", "sha256"}


class FlushRecorder(io.StringIO):
    """stdout that keeps what had been written at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.at_flush: list[str] = []

    def flush(self) -> None:
        self.at_flush.append(self.getvalue())
        super().flush()


def test_jsonl_flushes_each_line_as_its_picture_is_done(tmp_path, model_env, monkeypatch):
    photo_library(tmp_path, 3)
    stdout = FlushRecorder()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["--jsonl", "--batch-size", "1", str(tmp_path)]) == 0
    complete = [text.count("\n") for text in stdout.at_flush if text.endswith("\n")]
    assert {1, 2, 3} <= set(complete)  # out after one picture, after two, after three


def test_skip_done_describes_only_what_is_new_or_changed_and_adds_it_to_the_file(
    tmp_path, model_env, monkeypatch, capsys
):
    folder, done = tmp_path / "pics", tmp_path / "done.jsonl"
    photo_library(folder, 4)
    assert main(["--skip-done", str(done), str(folder)]) == 0  # the first run: no file yet
    captured = capsys.readouterr()
    assert captured.out == ""  # the lines go to the file
    assert captured.err.splitlines()[-1] == "Described 4."
    first = done.read_text().splitlines()
    assert len(first) == 4

    (folder / "0001-green.jpg").write_bytes(pictures.jpeg("blue"))  # edited since
    (folder / "0004-new.jpg").write_bytes(pictures.jpeg("white"))
    monkeypatch.chdir(tmp_path)  # the same files, named another way
    assert main(["--skip-done", "done.jsonl", "pics"]) == 0
    lines = done.read_text().splitlines()
    assert lines[:4] == first
    added = [json.loads(line) for line in lines[4:]]
    assert [(e["file"], e["english"]) for e in added] == [
        ("pics/0001-green.jpg", "a blue square"),
        ("pics/0004-new.jpg", "a white square"),
    ]
    assert capsys.readouterr().err.splitlines()[-1] == "Described 2, skipped 3 (already in done.jsonl)."

    monkeypatch.setenv("CAPTION_MODEL", str(tmp_path / "nowhere"))  # nothing left: no model loads
    assert main(["--skip-done", "done.jsonl", "pics"]) == 0
    assert capsys.readouterr().err.splitlines() == ["Described 0, skipped 5 (already in done.jsonl)."]


def test_a_line_cut_short_by_a_kill_is_passed_over_and_its_picture_described_again(
    tmp_path, model_env, capsys
):
    folder, done = tmp_path / "pics", tmp_path / "done.jsonl"
    names = photo_library(folder, 2)
    assert main(["--skip-done", str(done), str(folder)]) == 0
    whole = done.read_text()
    done.write_text(whole[:-40])  # the second line half-written
    assert main(["--skip-done", str(done), str(folder)]) == 0
    lines = done.read_text().splitlines()
    assert lines[:2] == [whole.splitlines()[0], whole.splitlines()[1][:-39]]
    assert json.loads(lines[2])["english"] == names[sorted(names)[1]]
    assert len(lines) == 3


def test_progress_shows_only_when_asked_off_a_terminal_and_never_in_stdout(tmp_path, model_env, capsys):
    photo_library(tmp_path, 3)
    assert main(["--jsonl", str(tmp_path)]) == 0  # stderr here is a pipe, not a terminal
    quiet = capsys.readouterr()
    assert "Describing" not in quiet.err and "picture/s" not in quiet.err
    assert main(["--jsonl", "--progress", str(tmp_path)]) == 0
    shown = capsys.readouterr()
    assert "Describing: 100%" in shown.err and "3/3" in shown.err and "picture/s" in shown.err
    assert shown.out == quiet.out  # the results alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--skip-done", "done.jsonl", "--json"], "--skip-done adds JSON lines to its file"),
        (["--json", "--jsonl"], "not allowed with argument"),
        (["--write-alt-text", "--ask", "what color is it?"], "an answer to --ask isn't alt text"),
        (["--overwrite"], "--overwrite goes with --write-alt-text"),
    ],
)
def test_flags_that_dont_go_together_are_a_usage_error(args, message, capsys):
    with pytest.raises(SystemExit) as caught:
        main([*args, "photo.jpg"])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.process
def test_progress_is_drawn_on_a_terminal_and_stdout_keeps_the_results_alone(tmp_path, model_env):
    photo_library(tmp_path, 12)
    terminal, its_end = pty.openpty()
    fcntl.ioctl(its_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        cli_command("--jsonl", "--batch-size", "4", str(tmp_path)), stdout=subprocess.PIPE, stderr=its_end
    )
    os.close(its_end)
    drawn = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the process has gone, and the terminal with it
            break
        if not chunk:
            break
        drawn += chunk
    out = process.stdout.read().decode()
    assert process.wait(timeout=60) == 0
    os.close(terminal)
    screen = drawn.decode(errors="replace")
    assert "Describing: 100%" in screen and "12/12" in screen and "picture/s" in screen
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", screen)  # time taken < time left
    assert "\r" not in out and len([json.loads(line) for line in out.splitlines()]) == 12


@pytest.mark.process
def test_a_library_stopped_by_ctrl_c_then_killed_then_resumed_gives_every_picture_exactly_once(
    library, model_env, tmp_path
):
    folder, names = library
    done = tmp_path / "done.jsonl"
    # Ctrl-C: lines come out while the run goes on; it stops after the batch in flight.
    with open(tmp_path / "stderr", "w+") as stderr:
        process = subprocess.Popen(
            cli_command("--jsonl", "--batch-size", "2", str(folder)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        first = process.stdout.readline()
        assert process.poll() is None  # a line out, long before the run's end
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()  # (not communicate(): it would miss what readline buffered)
        assert process.wait(timeout=120) == 130
        errors = (tmp_path / "stderr").read_text()
    lines = [first, *rest.splitlines(keepends=True)]
    assert 2 <= len(lines) < 200 and len(lines) % 2 == 0  # whole batches of two
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    assert "Stopping after the pictures in hand (Ctrl-C again to stop now)." in errors
    assert f"Stopped early: {200 - len(lines)} not looked at." in errors
    done.write_text("".join(lines))  # as "> done.jsonl" would have kept them

    # kill -9, halfway through the rest.
    process = subprocess.Popen(
        cli_command("--skip-done", str(done), "--batch-size", "1", str(folder)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while done.read_text().count("\n") < len(lines) + 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    before = done.read_text().count("\n")
    assert len(lines) + 20 <= before < 200  # killed halfway, with lines written before

    resumed = subprocess.run(
        cli_command("--skip-done", str(done), "--batch-size", "16", str(folder)),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped {before} (already in {done})" in resumed.stderr
    lines = done.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.endswith("}")]
    assert len(lines) - len(entries) <= 1  # at most one line cut short by the kill
    assert Counter(Path(e["file"]).name for e in entries) == Counter(list(names))
    assert all(e["english"] == names[Path(e["file"]).name] for e in entries)


@pytest.mark.process
def test_peak_memory_does_not_grow_with_the_folder(tmp_path, model_env):
    # Each strip is 1.5 MB decoded: a run holding the whole folder would take 225 MB more for
    # 200 strips than for 50, over a base of about 500 MB (a ratio near 1.4).
    peaks = {}
    for count in (50, 200):
        tall_strips(tmp_path / str(count), count)
        status, peaks[count] = peak_memory_kib(
            "--jsonl",
            "--batch-size",
            "16",
            str(tmp_path / str(count)),
            env=model_env,
            stderr=tmp_path / f"{count}.err",
        )
        assert status == 0, (tmp_path / f"{count}.err").read_text()
    assert peaks[200] / peaks[50] < 1.1, peaks


@pytest.mark.process
def test_output_read_by_head_ends_quietly_when_head_has_enough(tmp_path, model_env):
    # `python -m captioning --jsonl LIBRARY | head -n 1`: head exits after its line, and the
    # next line written meets a closed pipe. That ends the run, as it ends any Unix tool,
    # without a traceback or "Exception ignored" on the terminal.
    names = photo_library(tmp_path / "library", 6)
    process = subprocess.Popen(
        cli_command("--jsonl", "--batch-size", "1", str(tmp_path / "library")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **model_env},
    )
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    process.stdout.close()  # head has its line, and goes
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, errors  # 128 + SIGPIPE, as a shell reports it
    assert first["english"] == names[Path(first["file"]).name] == names[min(names)]  # in order
    assert "Traceback" not in errors and "Exception ignored" not in errors, errors
