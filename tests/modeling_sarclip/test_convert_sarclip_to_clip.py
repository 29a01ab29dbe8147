"""SARCLIP ViT <-> native transformers CLIPModel: parity on real MSTAR chips and real captions, loading without the
package, the zero-shot pipeline, sentence-transformers, the round trip, the CLI, bad inputs and the Hub push."""

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor, pipeline

from modeling_sarclip import SarclipImageProcessor, SarclipModel, SarclipProcessor, train_sarclip_tokenizer
from modeling_sarclip.convert_sarclip_to_clip import clip_to_sarclip, main, sarclip_to_clip

ATOL = 1e-4
MSTAR_PROMPTS = ["a SAR image of a T72 main battle tank", "an SAR chip of a ZIL131 truck", "a D7 bulldozer"]

# prints the export's embeddings of the chips and captions given as JSON, with modeling_sarclip impossible to import
PLAIN_TRANSFORMERS = """
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "modeling_sarclip":
            raise ImportError("modeling_sarclip is blocked in this test")

sys.meta_path.insert(0, Block())
import torch
from transformers import AutoModel, AutoProcessor, pipeline
folder, chips, texts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
model = AutoModel.from_pretrained(folder).eval()
processor = AutoProcessor.from_pretrained(folder)
inputs = processor(images=chips, text=texts, padding=True, return_tensors="pt")
with torch.no_grad():
    out = model(**inputs)
scores = pipeline("zero-shot-image-classification", model=folder)(chips[0], candidate_labels=["tank", "ship"])
print(json.dumps({"model": type(model).__name__, "processor": type(processor).__name__,
                  "image_embeds": out.image_embeds.tolist(), "text_embeds": out.text_embeds.tolist(),
                  "labels": [s["label"] for s in scores], "imported": [m for m in sys.modules if "sarclip" in m]}))
"""


@pytest.fixture(scope="module")
def mstar_chips(sar_data_dir):
    """One real MSTAR test chip per class (8-bit JPEG, 128 to 193 px), with its size."""
    folder = sar_data_dir / "mstar_soc"
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"MSTAR SOC chips not found in {folder}")
    chips = {}
    for row in csv.DictReader((folder / "labels.csv").open()):
        if row["split"] == "test":
            chips.setdefault(row["label"], folder / row["path"])
    return sorted(chips.values())


@pytest.fixture(scope="module")
def captions(sar_data_dir):
    """Real SAR captions of different lengths (SARCLIP example retrieval captions) and MSTAR class prompts."""
    path = sar_data_dir / "sarclip_examples" / "retrieval_captions_no_images.tsv"
    if not path.is_file():
        pytest.skip(f"real SAR captions not found: {path}")
    rows = list(csv.DictReader(path.open(), delimiter="\t"))
    return [row["caption"] for row in rows[:10]] + MSTAR_PROMPTS


@pytest.fixture
def sarclip_folder(tmp_path, tiny_config, clip_tokenizer):
    """`sarclip_folder(quick_gelu=False)`: a random tiny SARCLIP ViT (128 px, so 128 px MSTAR chips need no resize)
    with every weight perturbed, saved with its processor; returns (folder, model, processor)."""

    def make(quick_gelu=False, name="sarclip"):
        config = tiny_config(
            vision_config=dict(image_size=128, layers=2, width=32, head_width=16, patch_size=32), quick_gelu=quick_gelu
        )
        torch.manual_seed(0)
        model = SarclipModel(config).eval()
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.02)
        processor = SarclipProcessor(SarclipImageProcessor(size=128), clip_tokenizer)
        model.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
        return tmp_path / name, model, processor

    return make


def _architecture(config: dict) -> dict:
    """A config dict without the bookkeeping fields that saving fills in."""
    skip = {"transformers_version", "dtype", "_name_or_path", "architectures", "auto_map"}
    return {k: _architecture(v) if isinstance(v, dict) else v for k, v in config.items() if k not in skip}


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("quick_gelu", [False, True], ids=["gelu", "quick_gelu"])
def test_export_matches_sarclip_on_real_chips_and_captions(tmp_path, sarclip_folder, mstar_chips, captions, quick_gelu):
    src, model, processor = sarclip_folder(quick_gelu)
    out = sarclip_to_clip(src, tmp_path / "clip")
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "README.md"} <= files
    assert not [f for f in files if f.endswith(".py")]
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "clip" and "auto_map" not in config
    assert config["text_config"]["hidden_act"] == ("quick_gelu" if quick_gelu else "gelu")

    clip = CLIPModel.from_pretrained(out).eval()
    native = CLIPProcessor.from_pretrained(out)
    images = [Image.open(path) for path in mstar_chips]
    pixels = processor(images=images)["pixel_values"]
    sar_text = processor(text=captions)  # open_clip layout: 77 tokens, zero padding
    native_text = native(text=captions, padding=True, return_tensors="pt")  # native padding to the longest caption
    assert 0 < native_text["attention_mask"].sum(-1).min() < native_text["attention_mask"].shape[1]
    for caption, ids, mask in zip(captions, sar_text["input_ids"], native_text["input_ids"]):
        length = int((ids != 0).sum())
        assert mask[:length].tolist() == ids[:length].tolist(), caption
    with torch.no_grad():
        diffs = {
            "image_features": model.get_image_features(pixels).pooler_output
            - clip.get_image_features(pixel_values=pixels).pooler_output,
            "text_features": model.get_text_features(sar_text["input_ids"]).pooler_output
            - clip.get_text_features(**native_text).pooler_output,
        }
        sar_out = model(input_ids=sar_text["input_ids"], pixel_values=pixels)
        clip_out = clip(**native_text, pixel_values=pixels)
        diffs["image_embeds"] = sar_out.image_embeds - clip_out.image_embeds
        diffs["text_embeds"] = sar_out.text_embeds - clip_out.text_embeds
        diffs["logits_per_image"] = (sar_out.logits_per_image - clip_out.logits_per_image) / clip.logit_scale.exp()

    # chips already 128 x 128 need no resize: the native image processor gives SARCLIP's pixels
    square = [i for i, image in enumerate(images) if image.size == (128, 128)]
    assert square
    native_pixels = native(images=[images[i] for i in square], return_tensors="pt")["pixel_values"]
    diffs["native_pixel_values"] = native_pixels - pixels[square]
    with torch.no_grad():
        diffs["native_pipeline_image"] = (
            clip.get_image_features(pixel_values=native_pixels).pooler_output
            - model.get_image_features(pixels[square]).pooler_output
        )
    measured = {name: float(diff.abs().max()) for name, diff in diffs.items()}
    print(f"max abs diff (quick_gelu={quick_gelu}):", json.dumps(measured))
    assert max(measured.values()) <= ATOL, measured


def test_zero_shot_pipeline_ranks_like_sarclip(tmp_path, sarclip_folder, mstar_chips):
    src, _, _ = sarclip_folder()
    out = sarclip_to_clip(src, tmp_path / "clip")
    labels = [path.parent.name for path in mstar_chips]
    chips = [str(path) for path in mstar_chips if Image.open(path).size == (128, 128)]
    sar = pipeline("zero-shot-image-classification", model=str(src))
    native = pipeline("zero-shot-image-classification", model=str(out))
    assert type(native.model).__name__ == "CLIPModel"
    for chip in chips:
        expected = sar(chip, candidate_labels=labels, hypothesis_template="a SAR image of a {}.")
        got = native(chip, candidate_labels=labels, hypothesis_template="a SAR image of a {}.")
        assert [s["label"] for s in got] == [s["label"] for s in expected]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(got, expected)) <= 1e-5


def test_export_loads_with_plain_transformers_in_a_fresh_process(tmp_path, sarclip_folder, mstar_chips, captions):
    src, model, processor = sarclip_folder()
    out = sarclip_to_clip(src, tmp_path / "clip")
    chips = [str(path) for path in mstar_chips if Image.open(path).size == (128, 128)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PLAIN_TRANSFORMERS), str(out), json.dumps(chips), json.dumps(captions)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["model"] == "CLIPModel" and got["processor"] == "CLIPProcessor" and got["imported"] == []
    assert sorted(got["labels"]) == ["ship", "tank"]
    with torch.no_grad():
        expected = model(**processor(text=captions, images=[Image.open(c) for c in chips]))
    torch.testing.assert_close(torch.tensor(got["image_embeds"]), expected.image_embeds, atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.tensor(got["text_embeds"]), expected.text_embeds, atol=ATOL, rtol=0)


def test_sentence_transformers_loads_the_export(tmp_path, sarclip_folder, mstar_chips, captions):
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed (pip install sentence-transformers)"
    )
    from sentence_transformers.sentence_transformer.modules.clip_model import CLIPModel as STCLIPModel

    src, model, processor = sarclip_folder()
    out = sarclip_to_clip(src, tmp_path / "clip")
    images = [Image.open(path) for path in mstar_chips if Image.open(path).size == (128, 128)]
    with torch.no_grad():
        image_features = model.get_image_features(processor(images=images)["pixel_values"]).pooler_output
        text_features = model.get_text_features(processor(text=captions)["input_ids"]).pooler_output
    for encoder in (
        sentence_transformers.SentenceTransformer(str(out), device="cpu"),  # auto-detected CLIP modalities
        sentence_transformers.SentenceTransformer(modules=[STCLIPModel(str(out))], device="cpu"),  # the CLIP module
    ):
        torch.testing.assert_close(encoder.encode(images, convert_to_tensor=True), image_features, atol=ATOL, rtol=0)
        torch.testing.assert_close(encoder.encode(captions, convert_to_tensor=True), text_features, atol=ATOL, rtol=0)


@pytest.mark.parametrize("quick_gelu", [False, True], ids=["gelu", "quick_gelu"])
def test_round_trip_gives_identical_sarclip_weights(tmp_path, sarclip_folder, captions, quick_gelu):
    src, model, processor = sarclip_folder(quick_gelu)
    back = clip_to_sarclip(sarclip_to_clip(src, tmp_path / "clip"), tmp_path / "back")
    reloaded = SarclipModel.from_pretrained(back)
    expected, got = model.state_dict(), reloaded.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert reloaded.config.quick_gelu == quick_gelu
    assert _architecture(reloaded.config.to_dict()) == _architecture(model.config.to_dict())
    sar_processor = SarclipProcessor.from_pretrained(back)
    assert isinstance(sar_processor.image_processor, SarclipImageProcessor)
    assert sar_processor.image_processor.size == 128
    assert torch.equal(sar_processor(text=captions)["input_ids"], processor(text=captions)["input_ids"])
    card = (back / "README.md").read_text()
    assert "library_name: transformers" in card and "imported from the transformers CLIPModel folder" in card


def test_from_clip_with_the_legacy_argmax_pooling_config(tmp_path, sarclip_folder, captions):
    """Old OpenAI CLIP configs say eos_token_id 2, which makes transformers pool at argmax(ids)."""
    src, model, processor = sarclip_folder()
    clip_folder = sarclip_to_clip(src, tmp_path / "clip")
    config = json.loads((clip_folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 2
    (clip_folder / "config.json").write_text(json.dumps(config))
    imported = SarclipModel.from_pretrained(clip_to_sarclip(clip_folder, tmp_path / "imported")).eval()
    assert imported.config.text_config.eos_token_id == 49407
    ids = processor(text=captions)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(imported.get_text_features(ids).pooler_output,
                                   model.get_text_features(ids).pooler_output, atol=0, rtol=0)


def test_cli_help_export_overwrite_and_card(tmp_path, sarclip_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("to-clip", "from-clip", "--overwrite", "--base_model", "--push_to_hub", "--private", "--debug"):
        assert option in help_text, option
    assert help_text.count("(default:") == 5

    src, _, _ = sarclip_folder()
    out = tmp_path / "nested" / "clip"
    main(["to-clip", str(src), str(out), "--base_model", "sar-org/sarclip-vit-b-32"])
    assert "CLIPModel folder written to" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    for line in ("library_name: transformers", "pipeline_tag: zero-shot-image-classification", "- sar", "- clip",
                 "base_model: sar-org/sarclip-vit-b-32", "Float dB rasters"):
        assert line in card, line

    before = (out / "model.safetensors").read_bytes()
    assert main(["to-clip", str(src), str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    (out / "stale.txt").write_text("from an older export")
    main(["to-clip", str(src), str(out), "--overwrite"])
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").read_bytes() == before
    assert _leftovers(out.parent) == []


def test_overwrite_never_replaces_the_source_or_a_folder_it_did_not_write(tmp_path, sarclip_folder, capsys):
    src, _, _ = sarclip_folder()
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copytree(src, run / "final")
    (run / "notes.txt").write_text("the user's own file")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    # the output holds the source (RUN/final -> RUN), is the source, or lies inside it: refused, nothing deleted
    for out in (run, run / "final", run / "final" / "clip"):
        assert main(["to-clip", str(run / "final"), str(out), "--overwrite"]) == 2
        assert "overlaps the source folder" in capsys.readouterr().err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    # an existing folder that is not a CLIP export (here: a SARCLIP folder) is not replaced by --overwrite
    other = tmp_path / "other"
    shutil.copytree(src, other)
    assert main(["to-clip", str(src), str(other), "--overwrite"]) == 2
    assert "not a clip model folder" in capsys.readouterr().err
    assert (other / "config.json").is_file() and json.loads((other / "config.json").read_text())["model_type"] == "sarclip"


def _resnet_folder(tmp_path, tiny_config, tokenizer):
    SarclipModel(tiny_config("resnet")).save_pretrained(tmp_path / "rn")
    SarclipProcessor(SarclipImageProcessor(size=64), tokenizer).save_pretrained(tmp_path / "rn")
    return tmp_path / "rn"


def test_resnet_folder_is_refused_by_the_cli_without_traceback(tmp_path, tiny_config, clip_tokenizer):
    src = _resnet_folder(tmp_path, tiny_config, clip_tokenizer)
    result = subprocess.run(
        [sys.executable, "-m", "modeling_sarclip.convert_sarclip_to_clip", "to-clip", str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert str(src) in result.stderr and "no native ModifiedResNet CLIP class" in result.stderr
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path, sarclip_folder, captions, capsys):
    src, model, _ = sarclip_folder()
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    mismatched = tmp_path / "mismatched"
    model.save_pretrained(mismatched)
    small_tokenizer = train_sarclip_tokenizer(captions, vocab_size=300)
    SarclipProcessor(SarclipImageProcessor(size=128), small_tokenizer).save_pretrained(mismatched)
    no_tokenizer = tmp_path / "no_tokenizer"
    model.save_pretrained(no_tokenizer)
    exported = sarclip_to_clip(src, tmp_path / "exported")

    cases = [
        (["to-clip", not_a_model], "no config.json"),
        (["to-clip", other], "model_type 'bert', not 'sarclip'"),
        (["to-clip", exported], "model_type 'clip', not 'sarclip'; to-clip needs a SARCLIP folder"),
        (["to-clip", mismatched], "tokens but the text tower's vocab_size is 49408"),
        (["to-clip", no_tokenizer], "no tokenizer"),
        (["from-clip", src], "model_type 'sarclip', not 'clip'"),
        (["to-clip", src, src], "overlaps the source folder"),
    ]
    capsys.readouterr()  # drop the progress bars of the set-up
    for args, message in cases:
        out = tmp_path / "out"
        code = main([*map(str, args), *([] if len(args) == 3 else [str(out)])])
        err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]  # after any loading progress bar
        assert code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert str(args[1]) in err
        assert not out.exists() and _leftovers(tmp_path) == []


def test_push_to_hub(tmp_path, sarclip_folder, offline_hub, capsys):
    src, model, processor = sarclip_folder()
    out = tmp_path / "clip"
    main(["to-clip", str(src), str(out), "--push_to_hub", "sar-org/sarclip-clip", "--private"])
    assert "pushed to sar-org/sarclip-clip" in capsys.readouterr().out
    pushed = offline_hub.snapshot("sar-org/sarclip-clip")
    assert sorted(p.name for p in pushed.iterdir()) == sorted(p.name for p in out.iterdir())
    assert (pushed / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    clip = CLIPModel.from_pretrained("sar-org/sarclip-clip").eval()  # by repo id, from the offline Hub cache
    ids = processor(text=MSTAR_PROMPTS)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(
            clip.get_text_features(input_ids=ids).pooler_output, model.get_text_features(ids).pooler_output,
            atol=ATOL, rtol=0,
        )
