"""Chat vision-language models as CAPTION_MODEL: SmolVLM (Idefics3), SmolVLM2, Qwen2-VL,
Gemma 3, LLaVA, ... any model ``AutoModelForImageTextToText`` loads whose processor has a
chat template. Told what to do in English, in words the settings hold: CAPTION_PROMPT for
the short description, DETAILED_PROMPT for the long one, the person's question (put in
English) for an answer, and READ_PROMPT for the text in a picture where no OCR_MODEL reads it.

One user turn, the picture and then the words, through the model's own chat template, then
the assistant's turn to write. The engine translates what it writes, as it does BLIP-2's:
English first, the order Altbot settled on after local models described poorly in other
languages. A multilingual model may write in the languages CHAT_MODEL_LANGUAGES names
itself (:attr:`ChatModel.languages`): then it is told to, after the same words ("... Answer in
Spanish."), and a question asked in one of them is put to it as asked (and, for its English
answer, told "Answer in English.").

The split between the threads follows transformers 5's processors, in which every family
marks the picture in its prompt with ``processor.image_token`` and expands that mark into
the picture's tokens (``replace_image_token``: Idefics3's tiles, Qwen2-VL's grid):

    prepare(picture)   CPU, any thread: the image processor's tensors for this one picture
                       (pixel_values, and pixel_attention_mask or image_grid_thw where the
                       family has them), and the text its mark expands to
    run(kind, ...)     the prompts, each mark expanded, tokenized and padded on the left so
                       that every row's answer starts at the same column; the pictures'
                       tensors padded with zeros to the largest (Idefics3 drops all-zero
                       tiles, as when its own processor pads a batch) and joined; one
                       ``generate``; the prompt cut off, the rest decoded without specials

No tokenizer call pads, so no thread changes a tokenizer's state while another uses it (a
fast tokenizer's padding setting is shared state). Decoding is greedy or beam search, never
sampling: a picture gets the same words each time, batched or alone.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ModelLoadError
from ..languages import english_name
from ..settings import EngineSettings
from ..text import clean_text, tidy_text
from .loading import config_of, load_model, load_pretrained

__all__ = ["ADAPTERS", "ChatModel", "ChatPicture", "chat_prompt", "collate", "input_size", "told"]

# What the tokenizer gives besides the prompt's ids: not inputs of the picture.
_TEXT_KEYS = {
    "input_ids",
    "attention_mask",
    "text_replacement_offsets",
    "mm_token_type_ids",
    "token_type_ids",
}


@dataclass(frozen=True)
class ChatPicture:
    """One picture prepared for a chat model: its processor's tensors, and its tokens as text."""

    tensors: Mapping[str, torch.Tensor]  # each with the picture as its first dimension's rows
    image_text: str  # what ``processor.image_token`` in the prompt expands to for this picture


class ChatModel:
    """A chat vision-language model and its processor on one device."""

    family: ClassVar[str] = (
        "chat vision-language models (an image-text-to-text model with a chat template: "
        "idefics3 (SmolVLM), smolvlm, qwen2_vl, gemma3, llava, ...)"
    )
    roles: ClassVar[tuple[str, ...]] = ("caption",)
    generic: ClassVar[bool] = True  # after a family's own adapter (BLIP-2's)
    fallbacks: tuple[str, ...] = ()  # it describes in detail far better than Florence-2
    languages: tuple[str, ...] = ()

    def __init__(self, processor: Any, model: Any, settings: EngineSettings) -> None:
        self.processor, self.model, self.tokenizer = processor, model, processor.tokenizer
        self.device, self.dtype = model.device, model.dtype
        limit_side(processor.image_processor, settings.chat_picture_side)
        self.input_size = input_size(processor.image_processor)
        self.languages = settings.chat_languages
        self.prompts = {"describe": settings.caption_prompt, "describe_detailed": settings.detailed_prompt}
        if settings.read_prompt and not settings.ocr_model:  # a reading model, when named, reads
            self.prompts["read"] = settings.read_prompt
        limits = {
            "describe": (settings.caption_max_new_tokens, settings.caption_num_beams),
            "describe_detailed": (settings.detailed_max_new_tokens, settings.detailed_num_beams),
            "answer": (settings.answer_max_new_tokens, settings.answer_num_beams),
            "read": (settings.ocr_max_new_tokens, settings.ocr_num_beams),
        }
        pad = self.tokenizer.pad_token_id
        self.pad_id = self.tokenizer.eos_token_id if pad is None else pad
        self.generation = {
            kind: _generation(model.generation_config, *limits[kind], self.pad_id)
            for kind in (*self.prompts, "answer")
        }
        self.kinds = tuple(self.generation)
        self._controls = sorted(set(self.tokenizer.all_special_tokens) | {processor.image_token}, key=len)
        # A first call unsets any padding its tokenizer.json came with, here, on one thread.
        self.tokenizer("a")

    @classmethod
    def supports(cls, config: Mapping[str, Any]) -> bool:
        return _model_class(config) is not None

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
    ) -> ChatModel:
        from transformers import AutoProcessor

        try:
            processor = load_pretrained(AutoProcessor, name, role=role, setting=setting)
        except ModelLoadError as exc:
            if "torchvision" not in str(exc.__cause__).lower() or find_spec("torchvision"):
                raise
            # Qwen2-VL's processor, in transformers 5, can't be made without torchvision.
            raise ModelLoadError(
                f"The {role} model {name!r} ({setting}) needs torchvision, which isn't installed: "
                f"install the torchvision built for torch {torch.__version__}."
            ) from exc
        if _marks(processor) != 1:  # no template, or none with one place for one picture
            raise ModelLoadError(
                f"The {role} model {name!r} ({setting}) has no chat template with a place for the "
                "picture in its processor, which a chat model needs."
            )
        loader = _model_class(config_of(folder))  # its own class: int8 builds the model from it
        model = load_model(loader, name, settings, device, dtype, role=role, setting=setting)
        return cls(processor, model, settings)

    def prepare(self, picture: Image.Image) -> ChatPicture:
        mark = self.processor.image_token
        done = self.processor(
            images=[picture], text=[mark], return_tensors="pt", return_text_replacement_offsets=True
        )
        [[offset]] = done["text_replacement_offsets"]
        tensors = {k: v for k, v in done.items() if k not in _TEXT_KEYS and isinstance(v, torch.Tensor)}
        return ChatPicture(tensors, offset["replacement"])

    def run(
        self, kind: str, pixels: Sequence[ChatPicture], tasks: Sequence[Any], language: str = "en"
    ) -> list[str]:
        turns = self._turns(kind, tasks, language)
        rows = [self._ids(said, picture.image_text) for said, picture in zip(turns, pixels, strict=True)]
        width = max(map(len, rows))
        input_ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=self.device)
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        inputs = {key: self._placed(collate([p.tensors[key] for p in pixels])) for key in pixels[0].tensors}
        with torch.inference_mode():
            token_ids = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                **inputs,
                generation_config=self.generation[kind],
            )
        # generate() returns the prompt and then the answer: keep the answer.
        texts = self.tokenizer.batch_decode(token_ids[:, width:], skip_special_tokens=True)
        tidy = tidy_text if kind == "read" else clean_text
        return [tidy(text) for text in texts]

    def _turns(self, kind: str, tasks: Sequence[Any], language: str) -> list[tuple[tuple[str, str], ...]]:
        """Each task's conversation, (words, answer) turns, the last one's answer to come: the
        kind's prompt, or the question after those asked before about the picture; told to
        write in ``language`` where it isn't English."""
        if kind != "answer":
            return [((told(self.prompts[kind], language), ""),)] * len(tasks)
        return [
            (*((q.text, a) for q, a in t.earlier), (told(t.question.text, language, t.question.language), ""))
            for t in tasks
        ]

    def _ids(self, turns: Sequence[tuple[str, str]], image_text: str) -> list[int]:
        """One prompt's token ids: the chat template around the picture and the ``turns``
        ((words, answer), the last one's answer to come), the picture's mark expanded as its
        processor expands it."""
        clean = [(self._plain(words), self._plain(answer)) for words, answer in turns]
        prompt = chat_prompt(self.processor, clean[-1][0], earlier=clean[:-1])
        before, _, after = prompt.partition(self.processor.image_token)
        bos = self.tokenizer.bos_token
        # As the processor's own apply_chat_template does: no second BOS where the template wrote one.
        special = not (bos and prompt.startswith(bos))
        return self.tokenizer(before + image_text + after, add_special_tokens=special).input_ids

    def _plain(self, words: str) -> str:
        for control in reversed(self._controls):  # a person's words can't be the model's markup
            words = words.replace(control, "")
        return words

    def _placed(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.is_floating_point():
            return tensor.to(self.device, self.dtype, non_blocking=True)
        return tensor.to(self.device, non_blocking=True)


def told(words: str, language: str, asked_in: str = "en") -> str:
    """The words, in ``asked_in``, and what to write in, where either isn't English:
    ``told("Describe ...", "es")`` -> "Describe ... Answer in Spanish."."""
    if language == asked_in == "en":
        return words
    return f"{words} Answer in {english_name(language)}."


def chat_prompt(processor: Any, words: str, earlier: Sequence[tuple[str, str]] = ()) -> str:
    """The model's chat template over the conversation: the picture and the first words, each
    answer and the words after it (``earlier``: (words, answer) turns before ``words``), and
    the start of the assistant's turn; the picture is ``processor.image_token``, not yet
    expanded."""
    messages: list[dict[str, Any]] = []
    for said, answer in [*earlier, (words, "")]:
        content: list[dict[str, str]] = [{"type": "text", "text": said}]
        messages.append(
            {"role": "user", "content": [{"type": "image"}, *content] if not messages else content}
        )
        if answer:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    prompt: str = processor.apply_chat_template(messages, add_generation_prompt=True)
    return prompt


def _marks(processor: Any) -> int:
    """How many places for a picture the chat template makes for one picture (1, or it can't be used)."""
    mark = getattr(processor, "image_token", None)
    if not mark or not getattr(processor, "chat_template", None):
        return 0
    try:
        return chat_prompt(processor, "?").count(mark)
    except Exception:  # a template that can't take this turn (jinja's errors, a ValueError, ...)
        return 0


def collate(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The pictures' tensors as one batch: each padded with zeros at the end of every dimension
    but the first to the largest, then joined along the first (Idefics3's tiles, LLaVA's
    pictures, Qwen2-VL's patches and grids alike)."""
    dims = tensors[0].dim()
    largest = [max(t.shape[d] for t in tensors) for d in range(dims)]
    padded = []
    for tensor in tensors:
        pad: list[int] = []
        for d in reversed(range(1, dims)):  # F.pad takes the last dimension first
            pad += [0, largest[d] - tensor.shape[d]]
        padded.append(F.pad(tensor, pad) if any(pad) else tensor)
    return torch.cat(padded)


# Past this, a processor's "longest_edge" is a count of pixels (Qwen2-VL's), not a side.
_COUNTS_PIXELS = 4096


def limit_side(image_processor: Any, side: int) -> None:
    """Pictures seen at most ``side`` pixels on their longest side (0: as the processor would),
    where the processor resizes to a longest edge: Idefics3 (SmolVLM) then cuts fewer tiles, or
    none. Qwen2-VL's longest edge counts pixels (see :func:`input_size`): then ``side`` squared."""
    size: Any = getattr(image_processor, "size", None)
    longest = size.get("longest_edge") if size is not None and hasattr(size, "get") else None
    if not side or not longest:
        return
    limit = min(longest, side * side if longest > _COUNTS_PIXELS else side)
    if isinstance(size, dict):
        image_processor.size = {**size, "longest_edge": limit}
    else:  # transformers' SizeDict, a dataclass
        image_processor.size = dataclasses.replace(size, longest_edge=limit)


def input_size(image_processor: Any) -> int:
    """The pixels a side a picture is worth fetching at: the processor's height, or its longest
    edge (Idefics3 resizes to it, then tiles), or shortest edge (CLIP's). Qwen2-VL gives pixel
    counts under the same names: past 4096, a count becomes the side of a square of it."""
    size = getattr(image_processor, "size", None) or {}
    for key in ("height", "longest_edge", "shortest_edge"):
        value = size.get(key) if hasattr(size, "get") else getattr(size, key, None)
        if value:
            return int(value) if value <= _COUNTS_PIXELS else int(value**0.5)
    return 512


def _model_class(config: Mapping[str, Any]) -> Any:
    """The class ``AutoModelForImageTextToText`` would load a model of this config with, or None."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(str(config.get("model_type")))
    return getattr(transformers, name, None) if isinstance(name, str) else None


def _generation(base: Any, max_new_tokens: int, num_beams: int, pad_id: int | None) -> Any:
    config = copy.deepcopy(base)
    # Never sampling, whatever the model's own generation config says (some set a temperature).
    config.update(
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    if config.pad_token_id is None:
        config.pad_token_id = pad_id
    return config


ADAPTERS = (ChatModel,)
