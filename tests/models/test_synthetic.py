"""The model builders that stand in for downloads in the tests and the benchmarks."""

from __future__ import annotations

import pytest
import torch

from captioning import Engine, EngineSettings
from tests.support import synthetic
from tests.support.tiny_models import caption_for, square


def test_the_full_shape_is_blip2_opt_2_7b_and_opus_mt_en_es():
    shape = synthetic.SHAPES["full"]
    tokenizer = synthetic.caption_tokenizer([caption_for("red")] * 4)
    with torch.device("meta"):  # sizes only: no memory for 3.9 B weights
        _, blip = synthetic.build_captioner(shape, tokenizer)
        marian = synthetic.build_translator(
            shape, synthetic.translation_tokenizer(["a red square"], ["un cuadrado rojo"])
        )
    config = blip.config
    assert (config.vision_config.num_hidden_layers, config.vision_config.hidden_size) == (39, 1408)
    assert (config.qformer_config.num_hidden_layers, config.qformer_config.hidden_size) == (12, 768)
    assert (config.text_config.num_hidden_layers, config.text_config.hidden_size) == (32, 2560)
    assert config.text_config.vocab_size == 50304 and config.num_query_tokens == 32
    # blip2-opt-2.7b has 3.745 B parameters; opus-mt-en-es about 77 M.
    assert 3.7e9 < synthetic.count_parameters(blip) < 3.8e9
    assert (marian.config.d_model, marian.config.encoder_layers, marian.config.vocab_size) == (512, 6, 65001)
    assert 7.0e7 < synthetic.count_parameters(marian) < 8.5e7


@pytest.mark.parametrize("seed", [5, 9])  # random models that say EOS first, unless held back
def test_fixed_length_survives_saving_and_the_engine_honours_it(seed, tmp_path, monkeypatch):
    shape = synthetic.SHAPES["tiny"]
    torch.manual_seed(seed)
    english, spanish = ["a red square"], ["un cuadrado rojo"]
    processor, blip = synthetic.build_captioner(
        shape, synthetic.caption_tokenizer(english * 4), fixed_length=6
    )
    tokenizer = synthetic.translation_tokenizer(english, spanish)
    marian = synthetic.build_translator(shape, tokenizer, fixed_length=6)
    caption_dir, translation_dir = synthetic.save_models(
        tmp_path / str(seed), processor, blip, tokenizer, marian
    )
    settings = EngineSettings.from_env(
        {"CAPTION_MODEL": str(caption_dir), "TRANSLATION_MODEL": str(translation_dir), "DEVICE": "cpu"}
    ).with_overrides(caption_max_new_tokens=6, translation_max_new_tokens=6)
    engine = Engine.load(settings, questions=False)
    lengths = []
    generate = engine.routes["describe"].model.generate

    def recording_generate(*args, **kwargs):
        out = generate(*args, **kwargs)
        lengths.append(out.shape[1])
        return out

    monkeypatch.setattr(engine.routes["describe"].model, "generate", recording_generate)
    engine.describe([square("red"), square("blue")])
    assert lengths == [shape.num_query_tokens + 1 + 6]  # image tokens, BOS, the caption


def test_the_caption_tokenizer_has_opts_special_ids():
    tokenizer = synthetic.caption_tokenizer(["a red square"] * 4)
    assert tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert tokenizer.decode(tokenizer("a red square").input_ids, skip_special_tokens=True) == "a red square"


def test_the_translation_tokenizer_round_trips_both_languages():
    tokenizer = synthetic.translation_tokenizer(["a red square"], ["un cuadrado rojo"])
    ids = tokenizer(text_target="un cuadrado rojo").input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "un cuadrado rojo"
    assert tokenizer.convert_ids_to_tokens(0) == "</s>"
    assert tokenizer.pad_token_id == len(tokenizer) - 1
