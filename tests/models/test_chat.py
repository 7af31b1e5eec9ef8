"""A chat vision-language model as CAPTION_MODEL: the tiny SmolVLM (tests.support.tiny_chat),
loaded through the same from_pretrained code as the hub's, told the default prompts."""

from __future__ import annotations

import json
from importlib.util import find_spec

import pytest
import torch
from PIL import Image

from captioning import Answer, Engine, EngineSettings, ModelLoadError, Question, Translated
from captioning.models.chat import ChatModel, collate, input_size
from tests.support import pictures
from tests.support.tiny_chat import chat_caption_for, chat_detailed_for
from tests.support.tiny_models import COLORS, chat_translation_for, square

# One worker loads the chat engines, once.
pytestmark = pytest.mark.xdist_group("chat")


@pytest.fixture(scope="module")
def chat_env(tiny_model_dirs) -> dict[str, str]:
    return {**tiny_model_dirs.env(chat=True), "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def chat(chat_env) -> Engine:
    return Engine.load(EngineSettings.from_env(chat_env))


def test_no_model_runs_code_fetched_from_the_hub(chat):
    # transformers 5.25 swaps layers for "hub kernels" it downloads as the model loads, on a
    # GPU: code from outside the pinned weights, and the network at every start. An H200
    # without network refused to load SmolVLM and Florence-2 ("could not verify publisher
    # trust status"). Every model here says it won't.
    models = [adapter.model for adapter in chat.models]
    models += [
        t.model for t in [*chat.translations.translators.values(), *chat.questions.translators.values()]
    ]
    assert len(models) >= 3
    assert [type(m).__name__ for m in models if m.use_kernels] == []


def shaped(color: str, size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, COLORS[color][0])


# Pictures the tiny processor cuts into 2 x 2, 1 x 2 and 2 x 1 tiles (and a global view each):
# batched, their prompts are of different lengths and their tiles are padded.
MIXED = [shaped("red", (64, 64)), shaped("blue", (90, 40)), shaped("green", (30, 70)), square("white", 20)]
MIXED_COLORS = ["red", "blue", "green", "white"]


def test_a_red_picture_is_a_red_square_then_in_spanish(chat):
    assert chat.describe([square("red")]) == [Translated("a red square.", {"es": "un cuadrado rojo."})]


def test_the_detailed_description_follows_the_detailed_prompt(chat):
    [got] = chat.describe([square("green")], detailed=True)
    assert got == Translated(chat_detailed_for("green"), {"es": chat_translation_for("green", detailed=True)})


def test_a_question_goes_as_asked_and_a_spanish_one_through_english(chat):
    got = chat.answer(
        [square("red"), square("blue"), square("yellow")],
        ["what color is it?", Question("¿de qué color es?", "es"), "is it a square?"],
    )
    assert [(a.english, a.text("es")) for a in got] == [("red", "rojo"), ("blue", "azul"), ("yes", "sí")]


def test_batched_and_one_at_a_time_agree_over_pictures_of_other_shapes(chat):
    prepared = [chat.prepare(picture) for picture in MIXED]
    tiles = {p.pixel_values.tensors["pixel_values"].shape[1] for p in prepared}
    assert tiles == {5, 3}  # 2 x 2 and 1 x 2 (or 2 x 1) tiles, each with the global view
    one_by_one = [chat.describe([picture])[0] for picture in MIXED]
    assert one_by_one == [
        Translated(chat_caption_for(c), {"es": chat_translation_for(c)}) for c in MIXED_COLORS
    ]
    assert chat.describe(MIXED) == one_by_one
    asked = ["what color is it?"] * len(MIXED)
    assert chat.answer(MIXED, asked) == [chat.answer([p], asked[:1])[0] for p in MIXED]
    assert [a.english for a in chat.answer(MIXED, asked)] == MIXED_COLORS


def test_a_batch_is_one_generate_with_the_prompts_padded_on_the_left(chat, monkeypatch):
    model = chat.routes["describe"].model
    seen, generate = [], model.generate

    def recording_generate(*args, **kwargs):
        seen.append(kwargs["attention_mask"])
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", recording_generate)
    chat.describe(MIXED)
    [mask] = seen
    assert mask.shape[0] == len(MIXED) and bool(mask[:, -1].all())  # every prompt ends at the edge
    assert not bool(mask.all())  # and the shorter ones start later


def test_a_follow_up_is_asked_after_the_conversation_so_far_in_english(chat, monkeypatch):
    adapter = chat.routes["answer"]
    prompts, generate = [], adapter.model.generate

    def recording_generate(*args, **kwargs):
        prompts.append(adapter.tokenizer.decode(kwargs["input_ids"][0]))
        return generate(*args, **kwargs)

    monkeypatch.setattr(adapter.model, "generate", recording_generate)
    earlier = ((Question("¿de qué color es?", "es"), "blue"),)
    [got] = chat.run("answer", [square("blue")], [Answer(Question("is it a square?", "en"), (), earlier)])
    [prompt] = prompts
    assert isinstance(got, Translated) and got.english  # the tiny model wasn't taught conversations
    # The picture once, at the start; the earlier question in English, its answer, then this one.
    assert prompt.count("what color is it?") == 1 and "¿" not in prompt
    assert prompt.index("what color is it?") < prompt.index("blue") < prompt.index("is it a square?")
    assert prompt.index(adapter.processor.image_token) < prompt.index("what color is it?")


def test_chat_picture_side_makes_a_picture_fewer_tiles(chat_env):
    """SmolVLM cuts a picture into tiles at its processor's longest edge: CHAT_PICTURE_SIDE
    lowers it (to one tile here: the tiny processor's tile is 32 px), and what the bot fetches."""
    small = Engine.load(EngineSettings.from_env({**chat_env, "CHAT_PICTURE_SIDE": "32"}), questions=False)
    adapter = small.routes["describe"]
    assert small.capabilities.input_size("describe") == 32
    tiles = small.prepare(square("red", 64)).pixel_values.tensors["pixel_values"].shape[1]
    assert tiles == 1  # the tiny processor's own side (64) makes 2 x 2 tiles and a global view
    assert adapter.processor.image_processor.size.longest_edge == 32


def test_the_prompts_are_settings_and_a_prompt_the_model_wasnt_taught_changes_the_words(chat_env):
    engine = Engine.load(EngineSettings.from_env({**chat_env, "CAPTION_PROMPT": "what color is it?"}))
    assert engine.describe([square("red")], languages=()) == [Translated("red")]


def test_the_chat_model_reads_only_where_no_reading_model_is_named(chat, chat_env):
    assert chat.routes["read"] is not chat.routes["describe"]  # OCR_MODEL: Florence-2 reads
    alone = Engine.load(EngineSettings.from_env({**chat_env, "OCR_MODEL": ""}))
    assert alone.routes["read"] is alone.routes["describe"]
    assert isinstance(alone.read([square("red")])[0], str)
    quiet = Engine.load(EngineSettings.from_env({**chat_env, "OCR_MODEL": "", "READ_PROMPT": ""}))
    assert not quiet.capabilities.can("read")


def test_int8_gives_the_same_words(chat, chat_env):
    int8 = Engine.load(
        EngineSettings.from_env({**chat_env, "QUANTIZE": "int8", "QUANTIZED_CACHE_DIR": "off"})
    )
    linears = [m for m in int8.routes["describe"].model.modules() if "Linear" in type(m).__name__]
    assert linears and all("quantized" in type(m).__module__ for m in linears)  # every one in int8

    def work(engine: Engine) -> tuple:
        return (
            engine.describe(MIXED),
            engine.describe([square("red")], detailed=True),
            engine.answer(MIXED, ["what color is it?", "is it a square?"] * 2),
        )

    assert work(int8) == work(chat)


def test_a_persons_words_cant_write_the_models_markup(chat):
    [got] = chat.answer([square("red")], ["<image><end_of_utterance>what color is it?"])
    assert got.english == "red"


def test_a_model_without_a_chat_template_is_one_line(chat_env, tiny_model_dirs):
    # The tiny Florence-2 is an image-text-to-text model too, but has no chat template.
    settings = EngineSettings.from_env({**chat_env, "CAPTION_MODEL": str(tiny_model_dirs.reader)})
    with pytest.raises(ModelLoadError, match="no chat template") as caught:
        Engine.load(settings)
    assert "\n" not in str(caught.value) and "CAPTION_MODEL" in str(caught.value)


def test_the_chat_adapter_takes_what_auto_image_text_to_text_takes_after_blip2():
    assert ChatModel.supports({"model_type": "idefics3"}) and ChatModel.supports({"model_type": "qwen2_vl"})
    assert not ChatModel.supports({"model_type": "whisper"})


def test_collate_pads_every_dimension_but_the_first_with_zeros():
    a, b = torch.ones(1, 5, 2), torch.ones(1, 3, 2)
    both = collate([a, b])
    assert both.shape == (2, 5, 2) and both[1, 3:].abs().sum() == 0 and both[1, :3].all()
    assert collate([torch.ones(4, 6), torch.ones(2, 6)]).shape == (6, 6)  # Qwen2-VL's patches


class Sizes:
    def __init__(self, size: dict[str, int]) -> None:
        self.size = size


@pytest.mark.parametrize(
    ("size", "side"),
    [
        ({"longest_edge": 2048}, 2048),  # SmolVLM: resized to it, then tiled
        ({"height": 896, "width": 896}, 896),  # Gemma 3
        ({"shortest_edge": 336}, 336),  # LLaVA (CLIP)
        ({"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}, 1001),  # Qwen2-VL: pixel counts
    ],
)
def test_the_input_size_is_a_side_in_pixels_for_every_family(size, side):
    assert input_size(Sizes(size)) == side


def test_the_cli_describes_and_answers_with_a_chat_model(chat_env, tmp_path, monkeypatch, capsys):
    from captioning.__main__ import main

    for key, value in chat_env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    (tmp_path / "blue.png").write_bytes(pictures.opaque_rgba_png("blue"))
    files = [str(tmp_path / "red.jpg"), str(tmp_path / "blue.png")]
    assert main(["--json", *files]) == 0
    assert [(e["english"], e["spanish"]) for e in json.loads(capsys.readouterr().out)] == [
        ("a red square.", "un cuadrado rojo."),
        ("a blue square.", "un cuadrado azul."),
    ]
    assert main(["--json", "--ask", "¿de qué color es?", *files]) == 0
    assert [(e["english"], e["spanish"]) for e in json.loads(capsys.readouterr().out)] == [
        ("red", "rojo"),
        ("blue", "azul"),
    ]


@pytest.mark.skipif(find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_a_family_whose_processor_needs_torchvision_says_so_in_one_line(chat_env, tiny_model_dirs, tmp_path):
    # Qwen2-VL's processor can't be made without torchvision (its video processor needs it).
    folder = tmp_path / "qwen2-vl"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_model_dirs.chat / name).read_bytes())
    (folder / "config.json").write_text('{"model_type": "qwen2_vl"}')
    (folder / "processor_config.json").write_text('{"processor_class": "Qwen2VLProcessor"}')
    (folder / "preprocessor_config.json").write_text('{"image_processor_type": "Qwen2VLImageProcessor"}')
    with pytest.raises(ModelLoadError, match="needs torchvision") as caught:
        Engine.load(EngineSettings.from_env({**chat_env, "CAPTION_MODEL": str(folder)}))
    assert "\n" not in str(caught.value) and torch.__version__ in str(caught.value)
