"""Partial unfreezing (SARCLIP paper Fig. 6: the number of trained layers per tower)."""

from __future__ import annotations

from torch import nn

from modeling_sarclip import SarclipModel


def tower_blocks(tower: nn.Module) -> list[nn.Module]:
    """The stacked blocks of a tower, bottom to top: transformer layers, or the 4 residual stages of a ResNet.

    Choice: the paper counts "layers" without defining them for ResNet-50; we count its residual stages, as
    open_clip's `lock_image_tower(unlocked_groups)` does.
    """
    if hasattr(tower, "stages"):
        return list(tower.stages)
    return list(tower.encoder.layers)


def tower_head(tower: nn.Module) -> list[nn.Module]:
    """Modules above the blocks (final norm + projection, or the ResNet attention pool)."""
    if hasattr(tower, "attnpool"):
        return [tower.attnpool]
    norm = tower.post_layernorm if hasattr(tower, "post_layernorm") else tower.final_layer_norm
    return [norm, tower.projection]


def set_trainable_layers(tower: nn.Module, num_layers: int | None) -> None:
    """Train only the last `num_layers` blocks of `tower` and its head; None trains the whole tower.

    0 trains the head only (final norm + projection / attention pool); embeddings and the stem train only when
    `num_layers` covers every block.
    """
    if num_layers is None:
        return
    if num_layers < 0:
        raise ValueError(f"number of trainable layers must be >= 0, got {num_layers}")
    blocks = tower_blocks(tower)
    if num_layers >= len(blocks):
        return
    tower.requires_grad_(False)
    for module in blocks[len(blocks) - num_layers :] + tower_head(tower):
        module.requires_grad_(True)


def apply_partial_unfreezing(model: SarclipModel, vision_layers: int | None, text_layers: int | None) -> None:
    """Per-tower partial unfreezing; `logit_scale` stays trainable (as in open_clip's tower locking)."""
    set_trainable_layers(model.vision_model, vision_layers)
    set_trainable_layers(model.text_model, text_layers)
