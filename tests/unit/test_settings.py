"""Settings: read once from the environment, validated, overridable by flags."""

from __future__ import annotations

import pytest
import torch

from captioning import EngineSettings, SettingsError
from captioning.models.loading import resolve_device, resolve_dtype
from captioning.settings import ModelRef


def test_defaults_are_the_notebooks_models():
    settings = EngineSettings.from_env({})
    assert settings.caption_model == "Salesforce/blip2-opt-2.7b"
    assert settings.translators["es"].name == "Helsinki-NLP/opus-mt-en-es"
    assert (settings.device, settings.dtype) == ("auto", "auto")


def test_environment_variables_are_read_by_upper_case_name():
    settings = EngineSettings.from_env({"DEVICE": "cuda:1", "DTYPE": "bfloat16", "CAPTION_NUM_BEAMS": "3"})
    assert (settings.device, settings.dtype, settings.caption_num_beams) == ("cuda:1", "bfloat16", 3)


def test_the_process_environment_is_the_default(monkeypatch):
    monkeypatch.setenv("CAPTION_MAX_NEW_TOKENS", "12")
    assert EngineSettings.from_env().caption_max_new_tokens == 12


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEVICE", "gpu"), ("DTYPE", "float8"), ("CAPTION_NUM_BEAMS", "0"), ("MAX_BATCH_SIZE", "lots")],
)
def test_a_bad_value_names_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        EngineSettings.from_env({name: value})


def test_overrides_replace_fields_and_are_validated():
    settings = EngineSettings.from_env({}).with_overrides(device="cpu", caption_num_beams=None)
    assert settings.device == "cpu" and settings.caption_num_beams == 1
    with pytest.raises(SettingsError, match="MAX_BATCH_SIZE"):
        settings.with_overrides(max_batch_size=0)


def test_the_batch_size_suits_the_device_unless_it_is_set():
    # Measured at full size (docs/benchmarks.md): a GPU gains up to 16 and more; float32 on the
    # CPU still gains from 4 to 8; int8 on the CPU gains nothing past 4, where latency only grows.
    auto = EngineSettings.from_env({})
    assert auto.max_batch_size is None
    assert auto.batch_size_for("cuda") == 16
    assert auto.batch_size_for("cpu") == 8
    assert auto.with_overrides(quantize="int8").batch_size_for("cpu") == 4
    chosen = EngineSettings.from_env({"MAX_BATCH_SIZE": "32", "QUANTIZE": "int8"})
    assert (chosen.batch_size_for("cpu"), chosen.batch_size_for("cuda")) == (32, 32)


def test_the_int8_cache_is_in_the_users_cache_unless_set_elsewhere_or_off(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    default = tmp_path / "home" / ".cache" / "describe-bot" / "int8"
    assert EngineSettings.from_env({}).int8_cache == default
    assert EngineSettings.from_env({"QUANTIZED_CACHE_DIR": " "}).int8_cache == default  # empty: unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert EngineSettings.from_env({}).int8_cache == tmp_path / "xdg" / "describe-bot" / "int8"
    assert EngineSettings.from_env({"QUANTIZED_CACHE_DIR": "~/int8"}).int8_cache == tmp_path / "home" / "int8"
    assert EngineSettings.from_env({"QUANTIZED_CACHE_DIR": "off"}).int8_cache is None
    assert EngineSettings.from_env({"QUANTIZED_CACHE_DIR": "OFF"}).int8_cache is None


def test_settings_are_frozen():
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        EngineSettings.from_env({}).device = "cpu"  # type: ignore[misc]


def test_auto_means_cpu_in_float32_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    device = resolve_device("auto")
    assert device.type == "cpu"
    assert resolve_dtype("auto", device) == torch.float32


def test_auto_means_float16_on_a_gpu():
    assert resolve_dtype("auto", torch.device("cuda:0")) == torch.float16


def test_asking_for_cuda_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SettingsError, match="no usable CUDA GPU"):
        resolve_device("cuda")


def test_float16_on_the_cpu_is_refused_with_the_alternative():
    with pytest.raises(SettingsError, match="bfloat16"):
        resolve_dtype("float16", torch.device("cpu"))


def test_translation_models_are_code_model_pairs_in_order():
    models = "fr=Helsinki-NLP/opus-mt-en-fr, es=/models/en-es ,pt=Helsinki-NLP/opus-mt-tc-big-en-pt@>>por<<"
    settings = EngineSettings.from_env({"TRANSLATION_MODELS": models})
    assert settings.translators == {
        "fr": ModelRef("Helsinki-NLP/opus-mt-en-fr"),
        "es": ModelRef("/models/en-es"),
        "pt": ModelRef("Helsinki-NLP/opus-mt-tc-big-en-pt", ">>por<<"),
    }
    assert settings.languages == ("en", "fr", "es", "pt")


def test_translation_model_is_still_the_spanish_entry():
    settings = EngineSettings.from_env({"TRANSLATION_MODEL": "/models/mine"})
    assert settings.translators == {"es": ModelRef("/models/mine")}
    both = EngineSettings.from_env({"TRANSLATION_MODELS": "fr=x/en-fr", "TRANSLATION_MODEL": "/models/mine"})
    assert both.translators == {"fr": ModelRef("x/en-fr"), "es": ModelRef("/models/mine")}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("english=x/y", "two-letter ISO 639-1"),
        ("en=x/y", "other than en"),
        ("fr", "code=model"),
        ("fr=", "code=model"),
        ("fr=a/b,fr=c/d", "listed twice"),
    ],
)
def test_a_bad_translation_models_value_is_one_clear_line(value, words):
    with pytest.raises(SettingsError, match="TRANSLATION_MODELS") as caught:
        EngineSettings.from_env({"TRANSLATION_MODELS": value})
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_question_models_follow_the_same_rules_and_empty_turns_spanish_off():
    settings = EngineSettings.from_env({"QUESTION_TRANSLATION_MODELS": "es=a/es-en,fr=a/fr-en"})
    assert list(settings.question_translators) == ["es", "fr"]
    off = EngineSettings.from_env({"QUESTION_TRANSLATION_MODEL": ""})
    assert off.question_translators == {}


def test_an_empty_value_means_the_default():
    settings = EngineSettings.from_env({"CAPTION_NUM_BEAMS": "", "DEVICE": " ", "MAX_QUEUE": ""})
    assert (settings.caption_num_beams, settings.device, settings.max_queue) == (1, "auto", 256)


def test_chat_model_languages_are_codes_in_order_and_offered_with_the_translations():
    with pytest.raises(SettingsError, match="CHAT_MODEL_LANGUAGES: 'spanish' should be a two-letter"):
        EngineSettings.from_env({"CHAT_MODEL_LANGUAGES": "spanish"})
    assert EngineSettings.from_env({"CHAT_MODEL_LANGUAGES": " es, FR "}).chat_languages == ("es", "fr")
    settings = EngineSettings.from_env({"CHAT_MODEL_LANGUAGES": "fr,es"})
    assert settings.languages == ("en", "es", "fr")  # the translations first, each once
    assert EngineSettings.from_env({}).chat_languages == ()  # off by default
    with pytest.raises(SettingsError, match="listed twice"):
        EngineSettings.from_env({"CHAT_MODEL_LANGUAGES": "es,es"})
