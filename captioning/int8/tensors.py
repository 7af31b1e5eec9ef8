"""Tensors out of safetensors files, read one at a time, every header checked against its file
before anything it says is allocated: the model files :func:`~captioning.int8.quantize.quantize_files`
reads, and the int8 files :mod:`captioning.int8.format` writes."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import torch

__all__ = ["Safetensors"]

# safetensors' own limit on a header (100 MB): a damaged length is refused, not read.
_MAX_HEADER = 100_000_000


class Safetensors:
    """Tensors out of safetensors files (a folder's, or one file), read one at a time with
    plain reads (not mapped: pages read once don't stay resident). ``get`` gives floating-point
    tensors in float32, as the model is built; with ``exact``, as they are stored. The files
    stay open until :meth:`close`: one replaced or removed meanwhile is still read whole.

    Every header is checked against its file when it is opened (its length, and each tensor's
    bytes against its shape and the file's size), so a damaged file is one ValueError, never
    an allocation of whatever it says."""

    DTYPES: ClassVar[dict[str, torch.dtype]] = {
        "F64": torch.float64,
        "F32": torch.float32,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "I64": torch.int64,
        "I32": torch.int32,
        "I8": torch.int8,
        "U8": torch.uint8,
        "BOOL": torch.bool,
    }

    def __init__(self, where: Path, *, exact: bool = False) -> None:
        self.exact = exact
        self.metadata: dict[str, str] = {}
        self.index: dict[str, tuple[BinaryIO, int, dict[str, Any]]] = {}
        self._files: list[BinaryIO] = []
        try:
            for path in [where] if where.is_file() else sorted(where.glob("*.safetensors")):
                file = path.open("rb")
                self._files.append(file)
                header, base = self._header(file, path.name)
                self.metadata.update(header.pop("__metadata__", None) or {})
                for key, info in header.items():
                    self.index[key] = (file, base, info)
        except BaseException:
            self.close()
            raise

    def _header(self, file: BinaryIO, name: str) -> tuple[dict[str, Any], int]:
        """The header of ``file``, checked, and where its data starts."""
        size = os.fstat(file.fileno()).st_size
        start = file.read(8)
        if len(start) < 8:
            raise ValueError(f"{name} is shorter than its header says")
        (length,) = struct.unpack("<Q", start)
        if length > min(_MAX_HEADER, size - 8):
            raise ValueError(f"{name} says its header has {length} bytes, in a file of {size}")
        header = json.loads(file.read(length))
        if not isinstance(header, dict):
            raise ValueError(f"{name} has no header")
        room = size - 8 - length
        for key, info in header.items():
            if key != "__metadata__":
                self._check(name, key, info, room)
        return header, 8 + length

    def _check(self, name: str, key: str, info: Any, room: int) -> None:
        """One tensor's entry: a shape of sizes, and as many bytes as the shape needs, in the file."""

        def natural(number: object) -> bool:
            return isinstance(number, int) and not isinstance(number, bool) and number >= 0

        shape = info.get("shape") if isinstance(info, dict) else None
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(shape, list) and all(natural(n) for n in shape)):
            raise ValueError(f"{key} has a shape of {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(natural(n) for n in offsets)):
            raise ValueError(f"{key} has bytes {offsets!r}")
        start, end = offsets
        code = info.get("dtype")
        dtype = self.DTYPES.get(code) if isinstance(code, str) else None
        # A type this reader doesn't know is refused by get(), if the tensor is ever asked for.
        if start > end or (dtype is not None and math.prod(shape) * dtype.itemsize != end - start):
            raise ValueError(f"{key} has bytes {start} to {end} for {code} {shape}")
        if end > room:
            raise ValueError(f"{name} is shorter than its header says")

    def __enter__(self) -> Safetensors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def get(self, key: str) -> torch.Tensor:
        file, base, info = self.index[key]
        start, end = info["data_offsets"]
        if info["dtype"] not in self.DTYPES:
            raise ValueError(f"{key} is {info['dtype']}, a type this reader doesn't know")
        # Its size is the one checked against the file when the file was opened.
        tensor = torch.empty(info["shape"], dtype=self.DTYPES[info["dtype"]])
        size = end - start
        if size:
            # pread: no shared file position, so threads may read at once.
            view = tensor.view(-1).view(torch.uint8).numpy().data
            done = 0
            while done < size:
                got = os.preadv(file.fileno(), [view[done:]], base + start + done)
                if not got:
                    raise ValueError(f"{Path(file.name).name} ends inside {key}")
                done += got
        if self.exact or not tensor.is_floating_point() or tensor.dtype == torch.float32:
            return tensor
        return tensor.float()
