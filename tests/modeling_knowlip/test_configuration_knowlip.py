import pytest
from transformers import AutoConfig, BertConfig, ViTConfig

from modeling_knowlip import PRESETS, VQA_TASK_TYPES, SarKnowlipConfig


def test_presets_follow_the_paper():
    base = SarKnowlipConfig.from_preset("base")
    large = SarKnowlipConfig.from_preset("large")
    assert isinstance(base.vision_config, ViTConfig) and isinstance(base.text_config, BertConfig)
    assert (base.vision_config.hidden_size, base.vision_config.num_hidden_layers) == (768, 12)
    assert (large.vision_config.hidden_size, large.vision_config.num_hidden_layers) == (1024, 24)
    for config in (base, large):
        assert (config.vision_config.image_size, config.vision_config.patch_size) == (224, 16)
        assert config.text_config.hidden_size == 768
        assert config.text_config.num_hidden_layers + config.cross_encoder_config.num_hidden_layers == 12
        assert config.queue_size == 20000 and config.alpha == 0.4  # paper 4.1
        assert config.itc_weight == config.itm_weight == config.mlm_weight == 1.0  # eq. 7, equal weights
        assert config.cross_encoder_config.add_cross_attention and config.decoder_config.add_cross_attention
    assert list(SarKnowlipConfig().vqa_task_types) == list(VQA_TASK_TYPES)
    assert len(VQA_TASK_TYPES) == 6


def test_round_trip_through_dict_and_disk(tmp_path, tokenizer):
    config = SarKnowlipConfig.from_preset("tiny", tokenizer=tokenizer, alpha=0.25, queue_size=32)
    assert config.text_config.vocab_size == len(tokenizer)
    assert (config.cls_token_id, config.sep_token_id, config.mask_token_id, config.pad_token_id) == (
        tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id)
    assert SarKnowlipConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, SarKnowlipConfig)
    assert {**loaded.to_dict(), "_name_or_path": ""} == {**config.to_dict(), "_name_or_path": ""}
    assert isinstance(loaded.cross_encoder_config, BertConfig) and loaded.cross_encoder_config.is_decoder
    assert loaded.alpha == 0.25 and loaded.queue_size == 32


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="Unknown SAR-KnowLIP preset 'huge'"):
        SarKnowlipConfig.from_preset("huge")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cross_encoder_config": {**PRESETS["tiny"]["cross_encoder_config"], "is_decoder": False}},
         "cross_encoder_config needs is_decoder=True"),
        ({"decoder_config": {**PRESETS["tiny"]["decoder_config"], "hidden_size": 64}},
         "decoder_config.hidden_size=64 must equal"),
        ({"mask_token_id": 10**6}, "mask_token_id=1000000 is outside the vocabulary"),
        ({"mlm_span_fraction": 0.0}, "mlm_span_fraction must be in"),
    ],
)
def test_inconsistent_configs_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        SarKnowlipConfig.from_preset("tiny", **changes)
