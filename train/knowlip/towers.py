"""Image towers for `--model towers`: a transformers ViT folder, or the ViT image tower of a SARCLIP model folder.

A SARCLIP ViT (open_clip's `VisionTransformer`: patch conv without bias, class token, positions, ln_pre, pre-norm
blocks with fused qkv, ln_post, projection) is exactly a transformers `ViTModel` with SAR-KnowLIP's `vision_ln_pre`
(`modeling_knowlip.modeling_knowlip.build_vision_model`): ln_post is the ViT's final `layernorm`, the fused qkv splits
into q/k/v, and the patch projection gets a zero bias. Its projection becomes the ITC `vision_proj` when the widths
agree (bias 0). Converted here, in the training package, so that `modeling_knowlip` stays loadable without
`modeling_sarclip` (trust_remote_code folders).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import ViTConfig


def is_sarclip_folder(folder: str | Path) -> bool:
    """Whether `folder` holds a SARCLIP model (config.json model_type "sarclip")."""
    config = Path(folder) / "config.json"
    return config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "sarclip"


def sarclip_vision_tower(folder: str | Path) -> tuple[ViTConfig, dict[str, torch.Tensor], torch.Tensor]:
    """(ViT config, ViT state dict with `embeddings.ln_pre.*`, projection weight (embed_dim, width)) of the image
    tower of the SARCLIP model in `folder`. ResNet towers are refused."""
    from modeling_sarclip import SarclipModel

    sarclip = SarclipModel.from_pretrained(folder)
    vision = sarclip.config.vision_config
    if vision.is_resnet:
        raise ValueError(f"{folder}: a SARCLIP ResNet image tower cannot become SAR-KnowLIP's ViT (use a ViT model)")
    width = vision.width
    config = ViTConfig(
        hidden_size=width, num_hidden_layers=vision.layers, num_attention_heads=width // vision.head_width,
        intermediate_size=int(width * vision.mlp_ratio), image_size=vision.image_size, patch_size=vision.patch_size,
        num_channels=vision.num_channels, hidden_act=vision.hidden_act, layer_norm_eps=vision.layer_norm_eps,
        qkv_bias=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    tower = {name: tensor.detach().clone() for name, tensor in sarclip.vision_model.state_dict().items()}
    state = {
        "embeddings.cls_token": tower.pop("class_embedding").view(1, 1, width),
        "embeddings.position_embeddings": tower.pop("position_embedding").unsqueeze(0),
        "embeddings.patch_embeddings.projection.weight": tower.pop("patch_embedding.weight"),
        "embeddings.patch_embeddings.projection.bias": torch.zeros(width),
        "embeddings.ln_pre.weight": tower.pop("pre_layernorm.weight"),
        "embeddings.ln_pre.bias": tower.pop("pre_layernorm.bias"),
        "layernorm.weight": tower.pop("post_layernorm.weight"),
        "layernorm.bias": tower.pop("post_layernorm.bias"),
    }
    projection = tower.pop("projection.weight")
    names = {"layer_norm1": "layernorm_before", "layer_norm2": "layernorm_after", "self_attn.out_proj": "attention.o_proj",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    for i in range(vision.layers):
        prefix = f"encoder.layers.{i}."
        for kind in ("weight", "bias"):
            for q, part in zip("qkv", tower.pop(f"{prefix}self_attn.qkv.{kind}").chunk(3)):
                state[f"layers.{i}.attention.{q}_proj.{kind}"] = part
            for old, new in names.items():
                state[f"layers.{i}.{new}.{kind}"] = tower.pop(f"{prefix}{old}.{kind}")
    if tower:
        raise ValueError(f"{folder}: SARCLIP vision tensors not converted: {sorted(tower)[:5]}")
    return config, state, projection


__all__ = ["is_sarclip_folder", "sarclip_vision_tower"]
