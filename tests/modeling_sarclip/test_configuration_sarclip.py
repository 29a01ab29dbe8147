import json

import pytest

from modeling_sarclip import OPEN_CLIP_PRESETS, SarclipConfig


@pytest.mark.parametrize("name", sorted(OPEN_CLIP_PRESETS))
def test_presets_match_open_clip_json(name):
    import open_clip

    reference = open_clip.get_model_config(name)
    config = SarclipConfig.from_preset(name)
    assert config.embed_dim == reference["embed_dim"]
    vision, text = reference["vision_cfg"], reference["text_cfg"]
    assert config.vision_config.layers == vision["layers"]
    assert config.vision_config.width == vision["width"]
    assert config.vision_config.image_size == vision["image_size"]
    assert config.vision_config.is_resnet == isinstance(vision["layers"], (list, tuple))
    assert (config.text_config.width, config.text_config.heads, config.text_config.layers) == (
        text["width"],
        text["heads"],
        text["layers"],
    )


def test_heads_follow_open_clip():
    assert SarclipConfig.from_preset("ViT-L-14").vision_config.num_heads == 16
    assert SarclipConfig.from_preset("RN50").vision_config.num_heads == 32


def test_quickgelu_variant():
    config = SarclipConfig.from_preset("ViT-B-32-quickgelu")
    assert config.quick_gelu and config.vision_config.hidden_act == config.text_config.hidden_act == "quick_gelu"


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_round_trip(tmp_path, tiny_config, kind):
    config = tiny_config(kind)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "sarclip"
    loaded = SarclipConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.vision_config.is_resnet == config.vision_config.is_resnet


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="Unknown SARCLIP preset"):
        SarclipConfig.from_preset("ViT-H-99")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        SarclipConfig(vision_config=dict(image_size=30, patch_size=8))
    with pytest.raises(ValueError, match="4 stage depths"):
        SarclipConfig(vision_config=dict(layers=[1, 2]))
    with pytest.raises(ValueError, match="not supported by SARCLIP: vision_cfg.attentional_pool"):
        SarclipConfig.from_open_clip_config({"embed_dim": 8, "vision_cfg": {"attentional_pool": True}, "text_cfg": {}})
