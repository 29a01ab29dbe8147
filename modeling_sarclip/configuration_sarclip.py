"""SARCLIP configuration: open_clip's CLIP layout (ViT or ModifiedResNet image tower, causal text tower)."""

import copy
import math

from transformers import PretrainedConfig

from .pipeline_sarclip import register_sar_pipelines

# the standard zero-shot task reads SAR rasters for SARCLIP models; here because a config is the first thing both
# `import modeling_sarclip` and trust_remote_code loading read (pipeline_sarclip's docstring)
register_sar_pipelines()

# open_clip `model_configs/*.json` of the architectures SARCLIP was released with (SARCLIP paper, IV-C).
OPEN_CLIP_PRESETS = {
    "ViT-B-32": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    },
    "ViT-B-16": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    },
    "ViT-L-14": {
        "embed_dim": 768,
        "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12, "layers": 12},
    },
    "RN50": {
        "embed_dim": 1024,
        "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64, "patch_size": None},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    },
    "RN101": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": [3, 4, 23, 3], "width": 64, "patch_size": None},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    },
}


class SarclipVisionConfig(PretrainedConfig):
    """Image tower. `layers` is an int for a ViT and a list of 4 stage depths for open_clip's ModifiedResNet.

    Field names follow open_clip's `CLIPVisionCfg`; heads = width // head_width (ViT) or width * 32 // head_width
    (ResNet attention pool), as open_clip computes them.
    """

    model_type = "sarclip_vision_model"
    base_config_key = "vision_config"
    # transformers' standard names, read by generic tooling (the open_clip names stay for conversion)
    attribute_map = {"hidden_size": "width", "num_hidden_layers": "layers", "num_attention_heads": "num_heads"}

    def __init__(
        self,
        image_size=224,
        layers=12,
        width=768,
        head_width=64,
        mlp_ratio=4.0,
        patch_size=32,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        num_channels=3,
        **kwargs,
    ):
        self.image_size = image_size
        self.layers = list(layers) if isinstance(layers, (list, tuple)) else layers
        self.width = width
        self.head_width = head_width
        self.mlp_ratio = mlp_ratio
        self.patch_size = patch_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.num_channels = num_channels
        if self.is_resnet:
            if len(self.layers) != 4:
                raise ValueError(f"ResNet `layers` must list 4 stage depths, got {self.layers}")
            if image_size % 32:
                raise ValueError(f"ResNet image_size must be a multiple of 32, got {image_size}")
        elif not patch_size or image_size % patch_size:
            raise ValueError(f"ViT image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        super().__init__(**kwargs)

    @property
    def is_resnet(self) -> bool:
        return isinstance(self.layers, list)

    @property
    def num_heads(self) -> int:
        return (self.width * 32 if self.is_resnet else self.width) // self.head_width


class SarclipTextConfig(PretrainedConfig):
    """Causal text tower pooled at the end-of-text token (open_clip `CLIPTextCfg` field names)."""

    model_type = "sarclip_text_model"
    base_config_key = "text_config"
    attribute_map = {"hidden_size": "width", "num_hidden_layers": "layers", "num_attention_heads": "heads",
                     "max_position_embeddings": "context_length"}

    def __init__(
        self,
        context_length=77,
        vocab_size=49408,
        width=512,
        heads=8,
        layers=12,
        mlp_ratio=4.0,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=0,
        **kwargs,
    ):
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.width = width
        self.heads = heads
        self.layers = layers
        self.mlp_ratio = mlp_ratio
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        if width % heads:
            raise ValueError(f"text width ({width}) must be divisible by heads ({heads})")
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)


class SarclipConfig(PretrainedConfig):
    """SARCLIP: a CLIP with open_clip's exact architecture.

    Build one from an open_clip architecture name with `SarclipConfig.from_preset("ViT-B-32")`, or from an
    open_clip model-config JSON dict with `SarclipConfig.from_open_clip_config(cfg)`.
    """

    model_type = "sarclip"
    attribute_map = {"projection_dim": "embed_dim"}
    sub_configs_defaults = {"vision_config": SarclipVisionConfig, "text_config": SarclipTextConfig}

    def __init__(
        self,
        vision_config=None,
        text_config=None,
        embed_dim=512,
        logit_scale_init_value=math.log(1 / 0.07),
        quick_gelu=False,
        initializer_factor=1.0,
        **kwargs,
    ):
        self.vision_config = self._sub_config(SarclipVisionConfig, vision_config)
        self.text_config = self._sub_config(SarclipTextConfig, text_config)
        self.embed_dim = embed_dim
        self.logit_scale_init_value = logit_scale_init_value
        self.quick_gelu = quick_gelu
        self.initializer_factor = initializer_factor
        if quick_gelu:  # open_clip's `-quickgelu` variants (OpenAI-trained weights) swap the activation in both towers
            self.vision_config.hidden_act = self.text_config.hidden_act = "quick_gelu"
        super().__init__(**kwargs)

    @staticmethod
    def _sub_config(cls, value):
        if value is None:
            return cls()
        return cls(**value) if isinstance(value, dict) else value

    @classmethod
    def from_open_clip_config(cls, open_clip_config: dict, **kwargs) -> "SarclipConfig":
        """Map an open_clip model config (`embed_dim`, `vision_cfg`, `text_cfg`, `quick_gelu`) onto ours."""
        supported_vision = {"image_size", "layers", "width", "head_width", "mlp_ratio", "patch_size"}
        supported_text = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}
        vision_cfg = dict(open_clip_config.get("vision_cfg", {}))
        text_cfg = dict(open_clip_config.get("text_cfg", {}))
        unsupported = sorted(
            [f"vision_cfg.{k}" for k in vision_cfg if k not in supported_vision]
            + [f"text_cfg.{k}" for k in text_cfg if k not in supported_text]
        )
        if unsupported:
            raise ValueError(f"open_clip config options not supported by SARCLIP: {', '.join(unsupported)}")
        if vision_cfg.get("patch_size") is None:
            vision_cfg.pop("patch_size", None)
        return cls(
            vision_config=vision_cfg,
            text_config=text_cfg,
            embed_dim=open_clip_config["embed_dim"],
            quick_gelu=open_clip_config.get("quick_gelu", False),
            **kwargs,
        )

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "SarclipConfig":
        """Config of an open_clip architecture: one of ViT-B-32, ViT-B-16, ViT-L-14, RN50, RN101.

        A `-quickgelu` suffix selects QuickGELU as in open_clip.
        """
        base, quick = (name[: -len("-quickgelu")], True) if name.endswith("-quickgelu") else (name, False)
        if base not in OPEN_CLIP_PRESETS:
            raise ValueError(f"Unknown SARCLIP preset {name!r}; choose one of {sorted(OPEN_CLIP_PRESETS)}")
        preset = copy.deepcopy(OPEN_CLIP_PRESETS[base])
        preset["quick_gelu"] = quick
        return cls.from_open_clip_config(preset, **kwargs)


__all__ = ["SarclipConfig", "SarclipTextConfig", "SarclipVisionConfig", "OPEN_CLIP_PRESETS"]
