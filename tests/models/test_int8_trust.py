"""The int8 cache trusts its files as OpenSSH trusts ~/.ssh: only what this account alone can
write. A redeploy that copies the same model again reuses its file; the folder has a size cap."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from transformers import MarianMTModel

from captioning import EngineSettings
from captioning.hub import revision
from captioning.int8 import cache_entry, load_int8
from tests.models.test_quantize import int8_state, load_translator, same

pytestmark = pytest.mark.xdist_group("int8")


def said(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("captioning") and r.levelno >= level]


def the_same_model(got: torch.nn.Module, expected: torch.nn.Module) -> bool:
    want, have = int8_state(expected), int8_state(got)
    return [name for name in want if not same(have[name], want[name])] == []


def test_a_cache_folder_other_users_can_write_is_refused_in_one_line(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation, cache = tiny_model_dirs.translation, tmp_path / "int8"
    cache.mkdir()
    cache.chmod(0o775)  # a group's
    model = load_translator(translation, cache)
    assert said(caplog, logging.WARNING) == [
        f"Not using {cache}: other users can write it (mode 775); quantizing {translation} without it."
    ]
    assert list(cache.iterdir()) == []  # nothing kept, nothing read
    assert the_same_model(model, load_translator(translation, tmp_path / "private"))


def test_a_cache_folder_of_another_account_is_refused_in_one_line(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation, cache = tiny_model_dirs.translation, tmp_path / "int8"
    load_translator(translation, cache)  # made by this account
    caplog.clear()
    service = os.geteuid() + 1  # the service runs as another account than the folder's
    load_int8(MarianMTModel, translation, cache=cache, name=str(translation), owner=service)
    assert said(caplog, logging.WARNING) == [
        f"Not using {cache}: it belongs to uid {os.geteuid()}, not to this account (uid {service}); "
        f"quantizing {translation} without it."
    ]
    assert [line for line in said(caplog) if "from the cache" in line] == []


def test_a_cached_file_another_account_could_write_is_said_and_made_again(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation = tiny_model_dirs.translation
    expected = load_translator(translation, tmp_path)
    (entry,) = tmp_path.glob("*.safetensors")
    entry.chmod(0o666)
    caplog.clear()
    model = load_translator(translation, tmp_path)
    assert said(caplog, logging.WARNING) == [
        f"Can't read {entry} (other users can write it (mode 666)); quantizing {translation} again."
    ]
    assert entry.stat().st_mode & 0o022 == 0  # made again, by this account, for it alone
    assert the_same_model(model, expected)
    caplog.clear()
    load_translator(translation, tmp_path)
    assert [line for line in said(caplog) if "from the cache" in line] != []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another account")
def test_a_cached_file_of_another_account_is_said_and_made_again(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation = tiny_model_dirs.translation
    load_translator(translation, tmp_path)
    (entry,) = tmp_path.glob("*.safetensors")
    os.chown(entry, 4242, 4242)
    caplog.clear()
    load_translator(translation, tmp_path)
    assert said(caplog, logging.WARNING) == [
        f"Can't read {entry} (it belongs to uid 4242, not to this account (uid 0)); "
        f"quantizing {translation} again."
    ]
    assert entry.stat().st_uid == 0


def test_a_link_planted_where_the_lock_goes_is_not_followed(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation, cache = tiny_model_dirs.translation, tmp_path / "int8"
    entry = cache_entry(cache, MarianMTModel, str(translation), translation)
    lock = cache / f"{entry.name.rsplit('-', 1)[0]}.lock"
    target = tmp_path / "planted"
    cache.mkdir(mode=0o700)
    lock.symlink_to(target)
    model = load_translator(translation, cache)
    assert not target.exists()  # the lock's link created nothing
    problems = said(caplog, logging.WARNING)
    assert len(problems) == 1 and problems[0].startswith(f"Can't lock {lock} (")
    assert list(cache.glob("*.safetensors")) == []
    assert the_same_model(model, load_translator(translation, tmp_path / "private"))


def test_a_redeploy_that_touches_the_models_files_uses_the_same_cache_file(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    folder, cache = tmp_path / "model", tmp_path / "int8"
    shutil.copytree(tiny_model_dirs.translation, folder)
    load_translator(folder, cache)
    before = revision(folder)
    later = time.time() + 3600
    for path in folder.iterdir():  # copied again: the same bytes, new times
        os.utime(path, (later, later))
    assert revision(folder) == before
    caplog.clear()
    load_translator(folder, cache)
    assert [line for line in said(caplog) if "from the cache" in line] != []
    assert len(list(cache.glob("*.safetensors"))) == 1


def test_a_large_files_new_weights_of_the_same_size_and_header_are_a_new_revision(tmp_path):
    header = b'{"w":{"dtype":"U8","shape":[8000000],"data_offsets":[0,8000000]}}'
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8_000_000))
    old = revision(tmp_path)
    weights.write_bytes(len(header).to_bytes(8, "little") + header + bytes([1]) * 8_000_000)
    assert revision(tmp_path) != old


def test_the_cache_keeps_under_its_cap_by_removing_the_files_least_recently_used(
    tiny_model_dirs, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    cache = tmp_path / "int8"

    def load(folder: Path, cap: int | None = None, where: Path = cache) -> Path:
        load_int8(MarianMTModel, folder, cache=where, name=str(folder), max_bytes=cap)
        return cache_entry(where, MarianMTModel, str(folder), folder)

    first = load(tiny_model_dirs.translation)
    long_ago = time.time() - 3600
    os.utime(first, (long_ago, long_ago))  # used an hour ago
    second = load(tiny_model_dirs.question)
    third_size = load(tiny_model_dirs.multi, where=tmp_path / "elsewhere").stat().st_size
    cap = second.stat().st_size + third_size  # room for two
    third = load(tiny_model_dirs.multi, cap=cap)
    assert sorted(cache.glob("*.safetensors")) == sorted([second, third])
    assert said(caplog)[-1] == f"Removed {first}: the cache holds at most {cap / 1e9:.1f} GB."


def test_the_cap_is_a_setting():
    assert EngineSettings.from_env({}).int8_cache_max_gb == 20
    assert EngineSettings.from_env({"INT8_CACHE_MAX_GB": "4.5"}).int8_cache_max_gb == 4.5
