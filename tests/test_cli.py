"""``python -m captioning``: every kind of file in one run, JSON or text, honest exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from captioning.__main__ import main
from tests import pictures
from tests.tiny_models import caption_for, translation_for


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory) -> Path:
    """One file of every kind the intake knows, good and bad, under lying names."""
    folder = tmp_path_factory.mktemp("inbox")
    for name, make, _ in pictures.GOOD + pictures.BAD:
        (folder / name).write_bytes(make())
    return folder


@pytest.fixture
def model_env(monkeypatch, tiny_model_dirs) -> dict[str, str]:
    env = {**tiny_model_dirs.env(), "DEVICE": "cpu"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captioning", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=240,
    )


def test_json_describes_a_folder_of_every_kind_of_file(picture_folder, model_env):
    result = run_cli("--json", str(picture_folder), env=model_env)
    assert result.returncode == 1, result.stderr  # some files were rejected
    entries = json.loads(result.stdout)  # stdout is the JSON and nothing else

    expected_files = sorted(name for name, _, _ in pictures.GOOD + pictures.BAD)
    assert [Path(e["file"]).name for e in entries] == expected_files

    by_name = {Path(e["file"]).name: e for e in entries}
    for name, _, caption in pictures.GOOD:
        color = caption.split()[1]
        assert by_name[name] == {
            "file": str(picture_folder / name),
            "english": caption_for(color),
            "spanish": translation_for(color),
        }, name
    for name, _, word in pictures.BAD:
        assert set(by_name[name]) == {"file", "error"}, name
        assert word.lower() in by_name[name]["error"].lower(), name
    assert "Traceback" not in result.stderr


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


def test_a_model_that_cant_be_loaded_is_one_line_on_stderr(tmp_path, model_env):
    env = {**model_env, "CAPTION_MODEL": str(tmp_path / "nowhere")}
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    result = run_cli("--json", str(tmp_path / "red.jpg"), env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "caption model" in errors[0]
    assert "Traceback" not in result.stderr


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
