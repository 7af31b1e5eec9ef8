"""The shape every model adapter has: one family of models behind one small interface.

An adapter owns a model and its processor on one device, and maps task kinds to its own
methods. It follows transformers' pipelines: ``load`` (once, never at import), ``prepare``
(CPU only: a picture to the model's pixels, on any thread), and ``run`` (the forward pass over
a batch, the only code that touches the model, under ``torch.inference_mode``), which gives
English text, one per picture: the engine translates it (or, for the languages a chat model
writes in itself, asks it again in them).

The engine routes each task kind to the first loaded adapter that does it (the caption model's,
then the reading model's), and a kind an adapter lists among its ``fallbacks`` only where no
other does it.

Which adapter loads a model is decided by its ``config.json`` (:meth:`PictureModel.supports`),
among the adapters of the setting's role: ``caption`` (CAPTION_MODEL) or ``reading``
(OCR_MODEL). A new family is one module in this package with an ``ADAPTERS`` tuple.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..settings import EngineSettings

__all__ = ["PictureModel", "size_of"]


class PictureModel(Protocol):
    """A loaded model of one family, ready for batches of pictures."""

    family: ClassVar[str]  # for people: "BLIP-2"
    roles: ClassVar[tuple[str, ...]]  # the settings that may name it: "caption", "reading"
    kinds: tuple[str, ...]  # the task kinds it does
    # Those of its kinds it does only where no other loaded model does them: BLIP-2's detailed
    # caption (its short one, with beam search) gives way to Florence-2's paragraph.
    fallbacks: tuple[str, ...]
    # The languages besides English it writes in itself when told to (a chat model's
    # CHAT_MODEL_LANGUAGES); the engine translates its English into the rest.
    languages: tuple[str, ...]
    input_size: int  # pixels a side it looks at
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def supports(cls, config: Mapping[str, Any]) -> bool:
        """Whether a model with this ``config.json`` is one of this family."""
        ...

    @classmethod
    def load(
        cls,
        name: str,
        folder: str,
        settings: EngineSettings,
        device: torch.device,
        dtype: torch.dtype,
        *,
        role: str,
        setting: str,
    ) -> PictureModel: ...

    def prepare(self, picture: Image.Image) -> Any:
        """One picture's pixels, at this model's size and normalisation, on the CPU: a tensor
        (BLIP-2, Florence-2), or whatever else this adapter's ``run`` takes (a chat model's
        tensors and the text its picture takes in the prompt)."""
        ...

    def run(self, kind: str, pixels: Sequence[Any], tasks: Sequence[Any], language: str = "en") -> list[str]:
        """One batch of one kind -> the text for each picture, in order, in ``language``:
        English, or one of :attr:`languages`. A task's question (if it has one) is in English,
        or in one of :attr:`languages`, as asked."""
        ...


def size_of(processor: Any, default: int) -> int:
    """The pixels a side an image processor resizes to (``size`` has height, or shortest_edge)."""
    size = processor.image_processor.size
    return int(size.get("height") or size.get("shortest_edge") or default)
