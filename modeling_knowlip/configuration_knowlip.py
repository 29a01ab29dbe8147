"""SAR-KnowLIP configuration (paper sections 3.3 and 4.1).

Four towers, each configured by a transformers config:
- `vision_config` (`ViTConfig`): the image encoder f_v, ViT patch 16 at 224 px.
- `text_config` (`BertConfig`): the unimodal text encoder f_t used for ITC.
- `cross_encoder_config` (`BertConfig`): the fusion encoder, BERT layers with cross-attention to the image tokens, used
  for ITM and to encode the masked text for MLM. (Not named `fusion_config`: transformers 5.23 reserves
  `config.fusion_config` for its kernel-fusion patches and `from_pretrained` fails on a BertConfig there.) transformers' `BertLayer` only builds cross-attention when
  `is_decoder=True`; the model turns the causal self-attention back into bidirectional (`SarKnowlipFusionEncoder`).
- `decoder_config` (`BertConfig`, causal, cross-attending): the text decoder that regenerates masked fragments (eq. 6)
  and writes captions / answers.

Choice (the paper names ViT + BERT and cites ALBEF but gives no layer split): like ALBEF, BERT-base is split into a
6-layer text encoder and a 6-layer fusion encoder; like BLIP, the decoder has the full BERT depth.
"""

from transformers import BertConfig, PreTrainedConfig, ViTConfig
from transformers.configuration_utils import SubConfigSpec

# BertLayer builds its cross-attention block only for decoders.
CROSS_ATTENTION = {"is_decoder": True, "add_cross_attention": True}

# The six VQA task types of the paper's Table 6.
VQA_TASK_TYPES = (
    "target count",
    "target recognition",
    "target position",
    "main landform",
    "all landforms",
    "regional landform",
)

_BERT_BASE = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}
_TINY_TEXT = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}

PRESETS = {
    # ViT-B/16 at 224 px + BERT-base (paper Table 4/6 "ViT-Base").
    "base": {
        "vision_config": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                          "intermediate_size": 3072, "image_size": 224, "patch_size": 16},
        "text_config": {**_BERT_BASE, "num_hidden_layers": 6},
        "cross_encoder_config": {**_BERT_BASE, "num_hidden_layers": 6, **CROSS_ATTENTION},
        "decoder_config": {**_BERT_BASE, "num_hidden_layers": 12, **CROSS_ATTENTION},
        "embed_dim": 256,
    },
    # ViT-L/16 at 224 px + BERT-base (paper "ViT-Large").
    "large": {
        "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                          "intermediate_size": 4096, "image_size": 224, "patch_size": 16},
        "text_config": {**_BERT_BASE, "num_hidden_layers": 6},
        "cross_encoder_config": {**_BERT_BASE, "num_hidden_layers": 6, **CROSS_ATTENTION},
        "decoder_config": {**_BERT_BASE, "num_hidden_layers": 12, **CROSS_ATTENTION},
        "embed_dim": 256,
    },
    # For tests: vision and text widths differ on purpose, so the image-to-text projection is exercised.
    "tiny": {
        "vision_config": {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 96, "image_size": 32, "patch_size": 16},
        "text_config": {**_TINY_TEXT, "num_hidden_layers": 1},
        "cross_encoder_config": {**_TINY_TEXT, "num_hidden_layers": 1, **CROSS_ATTENTION},
        "decoder_config": {**_TINY_TEXT, "num_hidden_layers": 1, **CROSS_ATTENTION},
        "embed_dim": 16,
        "queue_size": 64,
    },
}


class SarKnowlipConfig(PreTrainedConfig):
    r"""
    embed_dim: size of the shared ITC embedding space (f_v, f_t of eq. 4).
    queue_size: length of the momentum feature queues (paper 4.1: 20,000).
    momentum: EMA factor of the momentum encoders, p_m <- m * p_m + (1 - m) * p (ALBEF).
    alpha: weight of the momentum-distillation soft targets in ITC (paper 4.1: 0.4).
    temp: initial ITC temperature tau of eq. 4 (learnable, clamped to [0.001, 0.5] as in ALBEF).
    itc_weight, itm_weight, mlm_weight: lambda_1..3 of eq. 7 (equal by default).
    mlm_span_fraction: share of a text's content tokens hidden in its one masked span (eq. 6).
    cls/sep/mask/pad_token_id: ids of the tokenizer's special tokens; [CLS] also starts the decoder, [SEP] ends it.
    vqa_task_types: the VQA task types a question may be prefixed with (paper Table 6).
    text_pooling: how the unimodal text encoder's token states become the ITC feature f_t, in every text path
        (`encode_text`, `get_text_features`, the momentum encoder): "mean" (masked mean over the attended tokens,
        default) or "cls" (BERT's [CLS] state, ALBEF's and the paper's choice). Measured (docs/EXPERIMENTS.md, SAR-KnowLIP): at
        initialisation [CLS] does not depend on the caption (mean pairwise cosine 0.99999 for random BERT, 1.00000 for
        the MiniLM split by `from_vision_text_pretrained`, whose layer-3 [CLS] is one massive activation), so ITC
        stays at ln(batch); mean-pooled states are informative at every layer.
    itm_pooling: what the ITM head reads of the fusion encoder: "mean" (masked mean of its text-token states,
        default) or "cls" (its [CLS] state, ALBEF's choice; see `SarKnowlipModel.itm_logits` for the measurement).
    cross_attention_init: initialisation of the image-to-text projection and of the cross-attention blocks (fusion
        encoder and decoder): "fan_in" (normal, std 1/sqrt(fan_in), default: each keeps the scale of its input) or
        "bert" (std `initializer_range`, as the rest of BERT). Measured at the small_real size (docs/EXPERIMENTS.md): with "bert"
        the 0.02-std image projection and value/output projections shrink the image's contribution to the fusion
        states to 0.1 % (swapping the image changes them by 0.0012 relative), so ITM gets no image signal and stays
        at its 1:2 prior (loss 0.6365); "fan_in" makes it 36 %.
    vision_ln_pre: an open_clip-style LayerNorm (`ln_pre`) on the ViT's token embeddings (patches + class token +
        positions) before the first block. Off in the paper's HF ViT; SARCLIP's ViT has it. It lets the tower learn
        on dark SAR chips in the official [-1, 1] range, where the first block otherwise sees one common offset.
    vqa_region_weight: weight of an auxiliary grounding loss in VQA fine-tuning (`SarKnowlipForQuestionAnswering`,
        `region_labels`): one linear scorer on the ViT's patch tokens, max-pooled to a `vqa_region_grid` x
        `vqa_region_grid` grid, says which regions hold a target (binary cross-entropy). 0 (default, the paper's
        recipe) builds no scorer. Our addition: the answer loss alone does not teach a tower pre-trained on centred
        chips where targets are (docs/EXPERIMENTS.md, VQA position).
    vqa_region_grid: side of that grid; the VQA sets number their 3 x 3 regions 1-9 row by row.
    """

    model_type = "sar_knowlip"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(ViTConfig, init_kwargs=PRESETS["base"]["vision_config"]),
        "text_config": SubConfigSpec(BertConfig, init_kwargs=PRESETS["base"]["text_config"]),
        "cross_encoder_config": SubConfigSpec(BertConfig, init_kwargs=PRESETS["base"]["cross_encoder_config"]),
        "decoder_config": SubConfigSpec(BertConfig, init_kwargs=PRESETS["base"]["decoder_config"]),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    cross_encoder_config: dict | PreTrainedConfig | None = None
    decoder_config: dict | PreTrainedConfig | None = None
    embed_dim: int = 256
    queue_size: int = 20000
    momentum: float = 0.995
    alpha: float = 0.4
    temp: float = 0.07
    itc_weight: float = 1.0
    itm_weight: float = 1.0
    mlm_weight: float = 1.0
    mlm_span_fraction: float = 0.15
    cls_token_id: int = 101
    sep_token_id: int = 102
    mask_token_id: int = 103
    pad_token_id: int = 0
    vqa_task_types: list[str] | tuple[str, ...] = VQA_TASK_TYPES
    initializer_range: float = 0.02
    text_pooling: str = "mean"
    itm_pooling: str = "mean"
    vision_ln_pre: bool = False
    cross_attention_init: str = "fan_in"
    vqa_region_weight: float = 0.0
    vqa_region_grid: int = 3

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.vqa_task_types = list(self.vqa_task_types)
        text = self.text_config
        for name in ("cross_encoder_config", "decoder_config"):
            sub = getattr(self, name)
            if not (sub.is_decoder and sub.add_cross_attention):
                raise ValueError(f"SarKnowlipConfig.{name} needs is_decoder=True and add_cross_attention=True")
            if sub.hidden_size != text.hidden_size:
                raise ValueError(
                    f"SarKnowlipConfig.{name}.hidden_size={sub.hidden_size} must equal "
                    f"text_config.hidden_size={text.hidden_size}"
                )
        if self.decoder_config.vocab_size != text.vocab_size:
            raise ValueError(
                f"decoder_config.vocab_size={self.decoder_config.vocab_size} != text_config.vocab_size={text.vocab_size}"
            )
        for name in ("cls_token_id", "sep_token_id", "mask_token_id", "pad_token_id"):
            if not 0 <= getattr(self, name) < text.vocab_size:
                raise ValueError(f"SarKnowlipConfig.{name}={getattr(self, name)} is outside the vocabulary")
        if self.cross_attention_init not in ("fan_in", "bert"):
            raise ValueError(f"cross_attention_init must be 'fan_in' or 'bert', got {self.cross_attention_init!r}")
        for name in ("text_pooling", "itm_pooling"):
            if getattr(self, name) not in ("mean", "cls"):
                raise ValueError(f"{name} must be 'mean' or 'cls', got {getattr(self, name)!r}")
        if self.vqa_region_weight < 0 or self.vqa_region_grid < 1:
            raise ValueError(f"vqa_region_weight must be >= 0 and vqa_region_grid >= 1, got {self.vqa_region_weight} "
                             f"and {self.vqa_region_grid}")
        if not 0.0 < self.mlm_span_fraction <= 1.0:
            raise ValueError(f"mlm_span_fraction must be in (0, 1], got {self.mlm_span_fraction}")

    @classmethod
    def from_preset(cls, name: str, tokenizer=None, **kwargs) -> "SarKnowlipConfig":
        """Build a preset ("base", "large", "tiny") without downloading anything.

        With a `tokenizer`, the vocabulary size and special-token ids are taken from it; `kwargs` override top-level
        fields (e.g. `queue_size=1024`); a dict for a sub-config updates the preset's (e.g.
        `vision_config={"image_size": 64}` keeps the other ViT settings and the tokenizer's vocabulary size).
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown SAR-KnowLIP preset {name!r}; choose from {sorted(PRESETS)}")
        preset = {key: dict(value) if isinstance(value, dict) else value for key, value in PRESETS[name].items()}
        if tokenizer is not None:
            for sub in ("text_config", "cross_encoder_config", "decoder_config"):
                preset[sub].update(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
            preset.update(
                cls_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id,
                mask_token_id=tokenizer.mask_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        for key, value in kwargs.items():
            preset[key] = {**preset[key], **value} if isinstance(value, dict) and isinstance(preset.get(key), dict) \
                else value
        return cls(**preset)


__all__ = ["SarKnowlipConfig", "PRESETS", "VQA_TASK_TYPES", "CROSS_ATTENTION"]
