"""``TRANSLATION_BACKEND=ctranslate2``: MarianMT through CTranslate2, the same translations,
faster on the CPU (int8 by default: several times transformers' speed; docs/benchmarks.md).

The Marian folder (or hub id, downloaded by :mod:`captioning.hub`) is converted on first use
into ``CT2_CACHE_DIR``, keyed by the model's files, the compute type and the ctranslate2
version, and reused after; the conversions are kept as the int8 models are
(:class:`~captioning.derived.DerivedFiles`: written whole and flushed to disk, made once,
pruned by use, trusted only when this account alone can write it). A conversion that can't be
loaded (a file cut short or removed) is said in one line and converted again. The conversion
keeps what transformers does:

* the decoder starts from the ``<pad>`` embedding, as ``MarianMTModel`` does. (The stock
  converter starts it from zeros, which agrees only where that row is zero: true of the
  Helsinki-NLP checkpoints, not of every Marian, e.g. the tests' tiny ones);
* the vocabulary has exactly the model's ``vocab_size`` entries, by token id;
* decoding follows the model's ``generation_config``: beams and length from the settings, no
  minimum length, the forced end token, ``<pad>`` never generated;
* the beam search doesn't stop at the first ``beam`` finished translations (CTranslate2's
  ``patience=1``): among them are short ones that no later step would have kept, such as the
  empty translation the first step can end. transformers keeps searching while a running beam
  may still beat its worst finished one. Stopping at the first four lost the space of
  ``▁un ▁carré ▁ vert`` (one token longer than the other colours): "un carrévert". Twice as
  many (:data:`PATIENCE`) gives transformers' words: on 16 tiny models trained for too few
  steps (where beams are close) and 23 texts each, patience 1 differed 17 times, 2 (or more)
  never, in float32 and int8. The two rules aren't the same rule (CTranslate2 can't take
  transformers'), so a sentence with a near tie could still end differently; the cost is
  the steps until 8 translations have finished instead of 4.
* ``<pad>`` is suppressed before the softmax, where transformers takes it out after it: the
  others' log-probabilities differ by ``<pad>``'s share, too little to change a choice on a
  trained model.

A multi-target model's target token (``>>por<<``) starts the source text, as with
transformers. Needs the ``ctranslate2`` package: ``pip install -e ".[ct2]"``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..derived import DerivedFiles, Entry
from ..errors import ModelLoadError, SettingsError, first_line
from ..hub import locate, revision
from ..text import clean_text

if TYPE_CHECKING:
    from ..settings import EngineSettings, ModelRef

__all__ = ["CTranslate2Model", "CTranslate2Translator", "conversion", "convert", "translator_options"]

log = logging.getLogger(__name__)

_DECODING = "decoding.json"
_TOKENIZER = "tokenizer"
_FORMAT = 1  # bumped when the conversion changes, so older cache folders are not reused
# Finished translations a beam search gathers before it stops, in beams (see the docstring).
PATIENCE = 2


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError:
        raise SettingsError(
            'TRANSLATION_BACKEND=ctranslate2 needs the ctranslate2 package: pip install -e ".[ct2]"'
        ) from None
    return ctranslate2


def conversion(cache_dir: Path, source: Path, compute_type: str) -> tuple[DerivedFiles, Entry]:
    """Where the conversion of the Marian folder ``source`` to ``compute_type`` is kept: keyed by
    the model's version (see :func:`captioning.hub.revision`), ctranslate2's and ours."""
    ct2 = _ctranslate2()
    files = DerivedFiles(cache_dir, verbs=("converts", "converting"))
    model = source.resolve()
    identity = {"model": str(model), "compute_type": compute_type}
    key = {"ctranslate2": ct2.__version__, "format": _FORMAT, "revision": revision(source)}
    return files, files.entry(f"{model.name}--{compute_type}", identity, key)


def convert(source: Path, target: Path, compute_type: str) -> None:
    """Convert the Marian folder ``source`` into the new folder ``target``."""
    converter = _converter(source)
    converter.convert(str(target), quantization=compute_type)
    converter.tokenizer.save_pretrained(target / _TOKENIZER)
    decoding = _decoding(converter.generation, converter.tokenizer)
    (target / _DECODING).write_text(json.dumps(decoding, indent=1), encoding="utf-8")


def _loader() -> Any:
    """CTranslate2's Marian loader, made exact (see the module's docstring)."""
    from ctranslate2.converters.transformers import BartLoader, MarianMTLoader

    class ExactMarianLoader(MarianMTLoader):
        """MarianMTLoader, starting the decoder where transformers does (see the module's docstring)."""

        def get_model_spec(self, model: Any) -> Any:
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            return BartLoader.get_model_spec(self, model)

        def set_config(self, config: Any, model: Any, tokenizer: Any) -> None:
            config.eos_token = tokenizer.eos_token
            config.unk_token = tokenizer.unk_token
            config.decoder_start_token = tokenizer.convert_ids_to_tokens(model.config.decoder_start_token_id)

        def set_decoder(self, spec: Any, decoder: Any) -> None:
            BartLoader.set_decoder(self, spec, decoder)

        def get_vocabulary(self, model: Any, tokenizer: Any) -> list[str]:
            size = model.config.vocab_size
            tokens: list[str | None] = [None] * size
            for token, index in tokenizer.get_vocab().items():
                if index < size:
                    tokens[index] = token
            return [t if t is not None else f"<ct2_filler_{i}>" for i, t in enumerate(tokens)]

    return ExactMarianLoader


def _converter(source: Path) -> Any:
    """A CTranslate2 converter of the Marian folder ``source``, through :func:`_loader`."""
    base: Any = _ctranslate2().converters.Converter
    loader = _loader()

    class ExactMarianConverter(base):  # ctranslate2 is untyped: its base is Any
        def _load(self) -> Any:
            import torch
            from transformers import MarianMTModel, MarianTokenizer

            with torch.no_grad():
                model = MarianMTModel.from_pretrained(source, dtype=torch.float32)
                tokenizer = MarianTokenizer.from_pretrained(source)
                if tokenizer.separate_vocabs or model.config.decoder_vocab_size not in (
                    None,
                    model.config.vocab_size,
                ):
                    raise ModelLoadError(
                        f"{source}: Marian models with separate vocabularies aren't supported"
                    )
                self.tokenizer, self.generation = tokenizer, model.generation_config
                return loader()(model, tokenizer)

    return ExactMarianConverter()


def _decoding(generation: Any, tokenizer: Any) -> dict[str, Any]:
    """The translate_batch options that reproduce transformers' generate, from its config."""
    bad_words = [list(w) for w in (generation.bad_words_ids or [])]
    return {
        # The forced end token takes the last of max_new_tokens: one token less of text.
        "forced_eos": generation.forced_eos_token_id == tokenizer.eos_token_id,
        "min_new_tokens": generation.min_new_tokens or max(0, (generation.min_length or 0) - 1),
        "length_penalty": float(1.0 if generation.length_penalty is None else generation.length_penalty),
        "suppress": [tokenizer.convert_ids_to_tokens(w) for w in bad_words] or [[tokenizer.pad_token]],
    }


def translator_options(device: Any, compute_type: str, *, threads: int | None = None) -> dict[str, Any]:
    """The ``ctranslate2.Translator`` keyword arguments for ``device`` (a ``torch.device`` or
    its name) and ``compute_type`` (CT2_COMPUTE_TYPE; "auto" is int8_float16 on a GPU, int8 on
    the CPU). CTranslate2 takes a device's type and index apart: cuda:1 is device="cuda",
    device_index=1 (the type alone would run on GPU 0)."""
    import torch

    device = torch.device(device)
    if compute_type == "auto":
        compute_type = "int8_float16" if device.type == "cuda" else "int8"
    return {
        "device": device.type,
        "device_index": device.index or 0,
        "compute_type": compute_type,
        "intra_threads": threads or min(4, os.cpu_count() or 1),
    }


class CTranslate2Model:
    """A converted Marian, loaded once; one or more :class:`CTranslate2Translator` use it."""

    def __init__(
        self,
        ref_name: str,
        settings: EngineSettings,
        device: Any,
        *,
        role: str,
        setting: str,
        threads: int | None = None,
    ) -> None:
        ct2 = _ctranslate2()
        from transformers import MarianTokenizer

        source = Path(locate(ref_name, role=role, setting=setting))
        options = translator_options(device, settings.ct2_compute_type, threads=threads)

        def load(folder: Path) -> None:
            self.decoding = json.loads((folder / _DECODING).read_text(encoding="utf-8"))
            self.tokenizer = MarianTokenizer.from_pretrained(folder / _TOKENIZER)
            self.translator = ct2.Translator(str(folder), **options)

        try:
            cache = Path(settings.ct2_cache_dir).expanduser()
            _converted(cache, source, options["compute_type"], ref_name, load)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"Could not convert the {role} model {ref_name!r} ({setting}): {first_line(exc)}"
            ) from exc
        self.name = ref_name


def _converted(
    cache_dir: Path, source: Path, compute_type: str, name: str, load: Callable[[Path], None]
) -> None:
    """``load(folder)`` of ``source``'s conversion: the one in the cache, converted first (once,
    by one process) if need be. A damaged one (a file cut short or gone, or one another account
    could write) is said in one line and converted again; without a cache this account alone
    can write, or without its lock, the conversion is made in a private folder, loaded, and
    removed."""
    files, entry = conversion(cache_dir, source, compute_type)
    if not files.usable(name):
        return _converted_privately(source, compute_type, load)
    if _load_entry(files, entry, load) is not None:
        with files.locked(entry, name) as locked:
            if not locked:
                return _converted_privately(source, compute_type, load)
            problem = _load_entry(files, entry, load)  # another process may have made it meanwhile
            if problem is not None:
                if problem:
                    log.warning("Can't load %s (%s); converting %s again.", entry.path, problem, name)
                    files.discard(entry)
                log.info("Converting %s to CTranslate2 (%s), once: %s", name, compute_type, entry.path)
                files.write(entry, lambda target: convert(source, target, compute_type))
                load(entry.path)
    files.used(entry)
    files.prune(entry)
    return None


def _load_entry(files: DerivedFiles, entry: Entry, load: Callable[[Path], None]) -> str | None:
    """None once ``load`` has loaded the entry; else why not: "" where there is none, or what
    is wrong with the one there."""
    if not entry.path.exists():
        return ""
    try:
        problem = files.distrusted(entry)
        if problem:  # anyone could have put any model there
            return problem
        load(entry.path)
    except Exception as exc:  # a file cut short or removed: converted again
        return first_line(exc, 200) or type(exc).__name__
    return None


def _converted_privately(source: Path, compute_type: str, load: Callable[[Path], None]) -> None:
    """``source`` converted into a folder of this process's own, loaded (into memory), and removed."""
    with tempfile.TemporaryDirectory(prefix="ct2-") as name:
        convert(source, Path(name) / "model", compute_type)
        load(Path(name) / "model")


class CTranslate2Translator:
    """N texts in, N out, in one ``translate_batch``; empty texts stay empty."""

    def __init__(
        self, model: CTranslate2Model, *, num_beams: int, max_new_tokens: int, target_token: str | None
    ) -> None:
        if target_token and target_token not in model.tokenizer.get_vocab():
            raise ModelLoadError(f"{target_token!r} is not a target token of {model.name}")
        self.model, self.num_beams, self.max_new_tokens, self.target_token = (
            model,
            num_beams,
            max_new_tokens,
            target_token,
        )

    @classmethod
    def load(
        cls,
        ref: ModelRef,
        settings: EngineSettings,
        device: Any,
        dtype: Any,
        *,
        role: str,
        setting: str,
        shared: dict[str, Any],
    ) -> CTranslate2Translator:
        if ref.name not in shared:  # a multi-target model serves each of its languages, loaded once
            shared[ref.name] = CTranslate2Model(ref.name, settings, device, role=role, setting=setting)
        return cls(
            shared[ref.name],
            num_beams=settings.translation_num_beams,
            max_new_tokens=settings.translation_max_new_tokens,
            target_token=ref.target_token,
        )

    def translate(self, texts: Sequence[str]) -> list[str]:
        todo = [i for i, text in enumerate(texts) if text]
        out = [""] * len(texts)
        decoding, tokenizer = self.model.decoding, self.model.tokenizer
        length = self.max_new_tokens - (1 if decoding["forced_eos"] else 0)
        if not todo or length <= 0:
            return out
        prefix = f"{self.target_token} " if self.target_token else ""
        rows = tokenizer([prefix + texts[i] for i in todo], truncation=True).input_ids  # each ends with </s>
        results = self.model.translator.translate_batch(
            [tokenizer.convert_ids_to_tokens(row) for row in rows],
            beam_size=self.num_beams,
            patience=PATIENCE,
            length_penalty=decoding["length_penalty"],
            max_decoding_length=length,
            min_decoding_length=min(decoding["min_new_tokens"], length),  # CTranslate2's default is 1
            suppress_sequences=decoding["suppress"],
            max_input_length=0,  # already truncated, keeping </s>
        )
        if len(results) != len(todo):  # the batch contract: one result per input
            raise RuntimeError(f"batch of {len(todo)} gave {len(results)} translations")
        # Through ids and batch_decode, as MarianTranslator does: the same text, to the letter.
        ids = [tokenizer.convert_tokens_to_ids(r.hypotheses[0]) for r in results]
        for i, text in zip(todo, tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True):
            out[i] = clean_text(text)
        return out
