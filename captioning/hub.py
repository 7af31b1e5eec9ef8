"""Where a model's files are: a local folder, the Hugging Face cache, or a download, said plainly.

``from_pretrained`` given a hub id asks the hub about every file and, when the hub can't be
reached, retries each request for minutes before it falls back to the cache or fails with
advice about local folders. So a model is located here first, once:

* a folder is used as it is;
* a hub id is planned with one dry run (which files, how big, which are cached): an
  unreachable hub fails in about a second, and the cache is used if it holds the model,
  otherwise one line says which model, that it couldn't be downloaded, and what to do;
* a download is announced with its size before it starts ("about 16 GB once; later runs use
  the cache"), with the hub's progress bars on a terminal;
* ``HF_HUB_OFFLINE=1`` uses the cache only.

The models then load from the local snapshot, so ``from_pretrained`` never touches the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, first_line

__all__ = ["locate", "revision", "size_text"]

log = logging.getLogger(__name__)

# What from_pretrained reads: configs, tokenizers, weights. Not TensorFlow, Flax, ONNX or Rust
# copies of the weights, which the hub repositories of these models also hold.
WANTED = ["*.json", "*.txt", "*.model", "*.spm", "*.jinja", "*.safetensors", "*.bin", "*.py"]
# When a repository has safetensors weights, its pickled copies are never read.
PICKLED = ["*.bin", "*.pt", "*.pth", "*.ckpt"]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def locate(name: str, *, role: str, setting: str) -> str:
    """A local folder with the model ``name`` (a hub id or a folder), downloading it if need be.

    Raises :class:`ModelLoadError` with one sentence that names the model and what to do.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if _looks_like_a_path(name):
        raise ModelLoadError(f"The {role} model folder {name!r} ({setting}) doesn't exist.")
    import huggingface_hub as hub

    if hub.constants.HF_HUB_OFFLINE:
        found = _cached(name)
        if found is None:
            raise ModelLoadError(
                f"The {role} model {name} is not in the local Hugging Face cache, and HF_HUB_OFFLINE "
                f"is set: unset it to download the model once, or set {setting} to a local folder."
            )
        return found
    plan, ignore = _plan(name, role, setting)
    if plan is None:  # the hub can't be reached: the cache, if it has the model
        found = _cached(name, PICKLED) or _cached(name)
        if found is None:
            raise ModelLoadError(
                f"Could not download the {role} model {name}: the Hugging Face hub "
                f"({hub.constants.ENDPOINT}) can't be reached. Check the network, or set {setting} "
                "to a local folder, or set HF_HUB_OFFLINE=1 to use only the local cache."
            )
        return found
    missing = sum(f.file_size or 0 for f in plan if f.will_download)
    if missing:
        log.warning("Downloading %s (about %s) once; later runs use the cache.", name, size_text(missing))
    if sys.stderr.isatty() and not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
        hub.utils.enable_progress_bars()
    else:
        hub.utils.disable_progress_bars()
    try:
        return str(hub.snapshot_download(name, allow_patterns=WANTED, ignore_patterns=ignore))
    except OSError as exc:
        raise ModelLoadError(
            f"Downloading the {role} model {name} failed ({first_line(exc)}); run again to resume it."
        ) from exc


def _plan(name: str, role: str, setting: str) -> tuple[list[Any] | None, list[str] | None]:
    """What a download of ``name`` would fetch (one dry run), and what it leaves out (pickled
    weights beside safetensors ones); no plan when the hub can't be reached."""
    import huggingface_hub as hub
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        plan = hub.snapshot_download(name, allow_patterns=WANTED, dry_run=True, etag_timeout=10)
    except (RepositoryNotFoundError, GatedRepoError, HFValidationError) as exc:
        raise _no_such_model(name, role, setting) from exc
    except OSError as exc:  # the hub can't be reached: DryRunError, connection errors, timeouts
        if _refused(exc.__cause__):  # it was reached, and said there is no such model (for us)
            raise _no_such_model(name, role, setting) from exc
        return None, None
    ignore = PICKLED if any(f.filename.endswith(".safetensors") for f in plan) else None
    return ([f for f in plan if not _matches(f.filename, ignore)] if ignore else list(plan)), ignore


def _cached(name: str, ignore: list[str] | None = None) -> str | None:
    """The model's folder in the local Hugging Face cache, if it is all there."""
    import huggingface_hub as hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(
            hub.snapshot_download(name, allow_patterns=WANTED, ignore_patterns=ignore, local_files_only=True)
        )
    except (LocalEntryNotFoundError, OSError):
        return None


def revision(folder: str | Path) -> str:
    """Which version of a model ``folder`` holds: a hub snapshot's commit (the cache keeps each
    in ``.../snapshots/<commit>``); for any other folder, a digest of its content, so that a
    redeploy that copies the same files again (new modification times) is the same version.

    The content is each file's name and size; the whole of each small file (configs,
    tokenizers, the safetensors index); and of each weights file, its safetensors header (every
    tensor's name, type, shape and place) and :data:`SAMPLES` blocks spread over its data. A
    full hash would read gigabytes at every start; new weights (a fine-tune has the same header
    and size) differ in every block.
    """
    folder = Path(folder)
    if folder.parent.name == "snapshots" and _COMMIT.match(folder.name):
        return folder.name
    digest = hashlib.sha256()
    for path in sorted(path for path in folder.iterdir() if path.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}\n".encode())
        with path.open("rb") as file:
            head = size if size <= _SMALL else _head(file, size)
            digest.update(file.read(head))
            if head < size:  # the blocks, evenly spread from the header's end to the file's
                for i in range(SAMPLES):
                    file.seek(head + max(0, size - head - _BLOCK) * i // (SAMPLES - 1))
                    digest.update(file.read(_BLOCK))
    return "content:" + digest.hexdigest()[:16]


# A file up to this size is read whole for a folder's revision; of a larger one, its
# safetensors header and SAMPLES blocks of _BLOCK bytes.
_SMALL = 4 << 20
SAMPLES, _BLOCK = 16, 64 << 10


def _head(file: Any, size: int) -> int:
    """How much of a large file its revision reads from its start: a safetensors file's header
    (its 8-byte length, then the header), or one block of any other file. Leaves the file at 0."""
    start = file.read(8)
    file.seek(0)
    length = int.from_bytes(start, "little") if len(start) == 8 else 0
    return 8 + length if 8 + length <= min(size, 100_000_000) else _BLOCK


def _no_such_model(name: str, role: str, setting: str) -> ModelLoadError:
    return ModelLoadError(
        f"There is no {role} model {name!r} on the Hugging Face hub, or it is private: check {setting}."
    )


def _refused(cause: BaseException | None) -> bool:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(cause, (RepositoryNotFoundError, GatedRepoError)):
        return True
    response = getattr(cause, "response", None) if isinstance(cause, HfHubHTTPError) else None
    return response is not None and response.status_code in (401, 403, 404)


def size_text(size: int) -> str:
    """1_234_567_890 -> '1.2 GB'; sizes as a person reads them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _looks_like_a_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep in name.strip("/").replace("/", "", 1)


def _matches(filename: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(filename, pattern) for pattern in patterns)
