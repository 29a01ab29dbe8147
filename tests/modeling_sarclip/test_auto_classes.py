"""Auto classes after `import modeling_sarclip`, in a fresh process with trust_remote_code, and the pipeline."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from modeling_sarclip import SarclipImageProcessor, SarclipModel, SarclipProcessor

TEXTS = ["a SAR image of a ship", "a SAR image of a tank", "a SAR image of farmland"]
CODE_FILES = {"configuration_sarclip.py", "modeling_sarclip.py", "loss_sarclip.py", "image_processing_sarclip.py",
              "processing_sarclip.py", "tokenization_sarclip.py"}

# prints the loaded classes and the logits of TEXTS against a fixed chip, as JSON
LOAD_AND_SCORE = """
import json, sys
import numpy as np
from transformers import (AutoConfig, AutoModel, AutoModelForZeroShotImageClassification, AutoProcessor)
folder, remote = sys.argv[1], sys.argv[2] == "remote"
if remote:
    sys.modules["modeling_sarclip"] = None  # the package must not be needed: the code comes from the folder
else:
    import modeling_sarclip
kwargs = {"trust_remote_code": True} if remote else {}
config = AutoConfig.from_pretrained(folder, **kwargs)
model = AutoModel.from_pretrained(folder, **kwargs).eval()
zero_shot = AutoModelForZeroShotImageClassification.from_pretrained(folder, **kwargs)
processor = AutoProcessor.from_pretrained(folder, **kwargs)
chip = np.load(folder + "/chip.npy")
inputs = processor(text=json.loads(sys.argv[3]), images=chip, return_tensors="pt")
logits = model(**inputs).logits_per_image
print(json.dumps({
    "classes": [type(o).__name__ for o in (config, model, zero_shot, processor)],
    "modules": sorted({type(o).__module__.split(".")[0] for o in (config, model, processor)}),
    "package_imported": bool(sys.modules.get("modeling_sarclip")),
    "logits": logits.tolist(),
}))
"""


def _save(folder, config, tokenizer):
    torch.manual_seed(0)
    model = SarclipModel(config).eval()
    processor = SarclipProcessor(SarclipImageProcessor(size=config.vision_config.image_size), tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    chip = np.random.default_rng(0).uniform(-25, 5, size=(48, 40)).astype(np.float32)  # dB, single band
    np.save(folder / "chip.npy", chip)
    with torch.no_grad():
        expected = model(**processor(text=TEXTS, images=chip, return_tensors="pt")).logits_per_image
    return model, processor, expected


def _run(script, *args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(env_extra or {})
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], capture_output=True,
                            text=True, env=env, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["registered", "remote"])
def test_auto_classes_in_a_fresh_process(tmp_path, tiny_config, clip_tokenizer, mode):
    folder = tmp_path / "model"
    _, _, expected = _save(folder, tiny_config(), clip_tokenizer)
    assert CODE_FILES <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForZeroShotImageClassification"] == "modeling_sarclip.SarclipModel"

    result = _run(LOAD_AND_SCORE, folder, mode, json.dumps(TEXTS), cwd=tmp_path,
                  env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"})

    assert result["classes"] == ["SarclipConfig", "SarclipModel", "SarclipModel", "SarclipProcessor"]
    if mode == "remote":
        assert result["modules"] == ["transformers_modules"] and not result["package_imported"]
    else:
        assert result["modules"] == ["modeling_sarclip"]
    torch.testing.assert_close(torch.tensor(result["logits"]), expected, atol=1e-5, rtol=1e-5)


def test_zero_shot_pipeline_scores_match_the_model(tmp_path, tiny_config, clip_tokenizer, sar_data_dir):
    folder = tmp_path / "model"
    model, processor, _ = _save(folder, tiny_config(), clip_tokenizer)
    chip = Image.open(next((sar_data_dir / "mstar_soc" / "test" / "T72").iterdir()))
    labels = ["tank", "ship", "aircraft", "building"]

    classifier = pipeline("zero-shot-image-classification", model=str(folder))
    scores = classifier(chip, candidate_labels=labels, hypothesis_template="a SAR image of {}.")

    assert sorted(s["label"] for s in scores) == sorted(labels)
    assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
    with torch.no_grad():
        inputs = processor(text=[f"a SAR image of {label}." for label in labels], images=chip.convert("RGB"),
                           return_tensors="pt", padding="max_length")
        expected = model(**inputs).logits_per_image.softmax(-1)[0]
    got = {s["label"]: s["score"] for s in scores}
    np.testing.assert_allclose([got[label] for label in labels], expected.numpy(), atol=1e-5)


def test_image_feature_extraction_pipeline_gives_the_image_embedding(tmp_path, tiny_config, clip_tokenizer,
                                                                     sar_data_dir):
    folder = tmp_path / "model"
    model, processor, _ = _save(folder, tiny_config(), clip_tokenizer)
    chip = Image.open(next((sar_data_dir / "mstar_soc" / "test" / "T72").iterdir()))
    extractor = pipeline("image-feature-extraction", model=str(folder))
    features = torch.tensor(extractor(chip))
    with torch.no_grad():
        pooled = model.get_image_features(**processor(images=chip, return_tensors="pt")).pooler_output
    torch.testing.assert_close(features, torch.nn.functional.normalize(pooled, dim=-1), atol=1e-5, rtol=1e-5)


SAR_PIPELINE = """
import json, sys
import numpy as np
from transformers import pipeline
sys.modules["modeling_sarclip"] = None  # the pipeline code must come from the model folder
classifier = pipeline(sys.argv[4], model=sys.argv[1], trust_remote_code=True)
labels = ["ship", "tank", "farmland"]
from_file = classifier(sys.argv[2], candidate_labels=labels, hypothesis_template="a SAR image of {}.")
from_array = classifier(np.load(sys.argv[3]), candidate_labels=labels, hypothesis_template="a SAR image of {}.")
print(json.dumps({"file": {s["label"]: s["score"] for s in from_file}, "array": {s["label"]: s["score"] for s in from_array}}))
"""


@pytest.mark.parametrize("task", ["zero-shot-image-classification", "sar-zero-shot-image-classification"])
def test_zero_shot_pipeline_takes_float_dual_pol_files_and_arrays(tmp_path, tiny_config, clip_tokenizer,
                                                                  sar_data_dir, task):
    """In a fresh process with the code from the model folder only (trust_remote_code), the standard task name and
    its SAR alias both read a float dB dual-pol GeoTIFF and a numpy array with the SAR radiometry."""
    folder = tmp_path / "model"
    model, processor, _ = _save(folder, tiny_config(), clip_tokenizer)
    assert (folder / "pipeline_sarclip.py").is_file()
    geotiff = sar_data_dir / "sarclip_examples" / "example.tif"  # 224 x 224 x 2, float32 VV/VH dB
    labels = ["ship", "tank", "farmland"]
    result = _run(SAR_PIPELINE, folder, geotiff, folder / "chip.npy", task, cwd=tmp_path,
                  env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"})
    texts = [f"a SAR image of {label}." for label in labels]
    with torch.no_grad():
        for key, image in (("file", str(geotiff)), ("array", np.load(folder / "chip.npy"))):
            inputs = processor(text=texts, images=image, return_tensors="pt", padding=True)
            expected = model(**inputs).logits_per_image.softmax(-1)[0].numpy()
            np.testing.assert_allclose([result[key][label] for label in labels], expected, atol=1e-5)
    # in this process (the package imported, no remote code) the standard task reads it too
    standard = pipeline("zero-shot-image-classification", model=str(folder))
    scores = {item["label"]: item["score"] for item in standard(str(geotiff), candidate_labels=labels,
                                                                 hypothesis_template="a SAR image of {}.")}
    np.testing.assert_allclose([scores[label] for label in labels], [result["file"][label] for label in labels],
                               atol=1e-5)


def test_the_standard_zero_shot_task_is_unchanged_for_other_models(tmp_path, sar_data_dir):
    """The standard task's class serves every model; one without the SAR image processor (a native CLIPModel) still
    opens files with PIL, exactly as transformers' own pipeline."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    from transformers.pipelines import ZeroShotImageClassificationPipeline

    from modeling_sarclip import SarZeroShotImageClassificationPipeline
    from modeling_sarclip.convert_sarclip_to_clip import native_tokenizer
    from modeling_sarclip.tokenization_sarclip import SarclipTokenizer, default_bpe_path

    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, vocab_size=49408),
                        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=32, patch_size=8), projection_dim=16)
    processor = CLIPProcessor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32),
                              native_tokenizer(SarclipTokenizer.from_bpe_file(default_bpe_path()), 77))
    clip = pipeline("zero-shot-image-classification", model=CLIPModel(config).eval(),
                    tokenizer=processor.tokenizer, image_processor=processor.image_processor)
    assert isinstance(clip, SarZeroShotImageClassificationPipeline)
    chip = str(next((sar_data_dir / "mstar_soc" / "test" / "T72").iterdir()))
    reference = ZeroShotImageClassificationPipeline(model=clip.model, tokenizer=clip.tokenizer,
                                                    image_processor=clip.image_processor)
    assert clip(chip, candidate_labels=["ship", "tank"]) == reference(chip, candidate_labels=["ship", "tank"])
    with pytest.raises(Exception, match="cannot identify image file"):  # PIL, as before: no SAR reading for CLIP
        clip(str(sar_data_dir / "sarclip_examples" / "example.tif"), candidate_labels=["ship", "tank"])


RESAVE = """
import json, sys
from pathlib import Path
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModel, AutoProcessor, Trainer, TrainingArguments
sys.modules["modeling_sarclip"] = None  # everything comes from the model folder
src, out = Path(sys.argv[1]), Path(sys.argv[2])
model = AutoModel.from_pretrained(src, trust_remote_code=True)
processor = AutoProcessor.from_pretrained(src, trust_remote_code=True)
model.save_pretrained(out / "plain")
lora = get_peft_model(model, LoraConfig(r=2, target_modules=["out_proj"]))
lora.merge_and_unload().save_pretrained(out / "merged")
Trainer(model=model, args=TrainingArguments(output_dir=str(out / "trainer"), report_to=[])).save_model(out / "trainer")
for name in ("plain", "merged", "trainer"):
    processor.save_pretrained(out / name)
print(json.dumps({name: sorted(p.name for p in (out / name).glob("*.py")) for name in ("plain", "merged", "trainer")}))
"""

SAR_PIPELINE_ON = """
import json, sys
from transformers import pipeline
sys.modules["modeling_sarclip"] = None
classifier = pipeline("sar-zero-shot-image-classification", model=sys.argv[1], trust_remote_code=True)
print(json.dumps([s["label"] for s in classifier(sys.argv[2], candidate_labels=["ship", "tank"])]))
"""


def test_a_remote_code_model_saved_again_keeps_every_file_its_config_names(tmp_path, tiny_config, clip_tokenizer,
                                                                           sar_data_dir):
    """save_pretrained, merge_and_unload + save and Trainer.save_model of a trust_remote_code model write the
    pipeline file that config.json's custom_pipelines names (it used to be lost), so the SAR pipeline still loads."""
    folder = tmp_path / "model"
    _save(folder, tiny_config(), clip_tokenizer)
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    files = _run(RESAVE, folder, tmp_path / "resaved", env_extra=env, cwd=tmp_path)
    geotiff = sar_data_dir / "sarclip_examples" / "example.tif"
    for name, saved in files.items():
        config = json.loads((tmp_path / "resaved" / name / "config.json").read_text())
        named = {ref.split(".")[0] + ".py" for ref in config["auto_map"].values()}
        named |= {task["impl"].split(".")[0] + ".py" for task in config["custom_pipelines"].values()}
        assert named <= set(saved) and "pipeline_sarclip.py" in saved, (name, saved)
        labels = _run(SAR_PIPELINE_ON, tmp_path / "resaved" / name, geotiff, env_extra=env, cwd=tmp_path)
        assert sorted(labels) == ["ship", "tank"], name
