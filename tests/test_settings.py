"""Settings: read once from the environment, validated, overridable by flags."""

from __future__ import annotations

import pytest
import torch

from captioning import EngineSettings, SettingsError
from captioning.models import resolve_device, resolve_dtype


def test_defaults_are_the_notebooks_models():
    settings = EngineSettings.from_env({})
    assert settings.caption_model == "Salesforce/blip2-opt-2.7b"
    assert settings.translation_model == "Helsinki-NLP/opus-mt-en-es"
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
