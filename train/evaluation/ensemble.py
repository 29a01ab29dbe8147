"""SARVLM-style ensemble of several SARCLIP checkpoints, usable wherever a SarclipModel is (retrieval, zero-shot).

Two ways to combine the members (all members see the same `pixel_values` / `input_ids`, so they must share the
input image size and the tokenizer):
- "features": the mean of the members' L2-normalised embeddings (members must have the same embedding size).
- "logits": the members' normalised embeddings concatenated and divided by sqrt(M). For two such vectors the dot
  product is the mean of the members' cosine similarities, i.e. the average of the members' logits before the
  temperature (a common temperature does not change any ranking); embedding sizes may differ. Prompt ensembles are
  then formed on the joint vector (renormalised as a whole, not per member).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPooling

COMBINE_MODES = ("features", "logits")


class SarclipEnsemble(torch.nn.Module):
    """Several dual encoders behind SarclipModel's `get_image_features` / `get_text_features` interface."""

    def __init__(self, models: Sequence[torch.nn.Module], combine: str = "features"):
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if combine not in COMBINE_MODES:
            raise ValueError(f"unknown combine mode {combine!r} (choose from {COMBINE_MODES})")
        _check_shared_inputs(models, combine)
        self.models = torch.nn.ModuleList(models)
        self.combine = combine

    @classmethod
    def from_pretrained(cls, checkpoints: Sequence[str], combine: str = "features", **kwargs) -> SarclipEnsemble:
        """Load each checkpoint folder (or Hub id) with `SarclipModel.from_pretrained(path, **kwargs)`."""
        from modeling_sarclip import SarclipModel

        return cls([SarclipModel.from_pretrained(path, **kwargs) for path in checkpoints], combine)

    def _combine(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        normalised = [F.normalize(e.float(), dim=-1) for e in embeddings]
        if self.combine == "features":
            return torch.stack(normalised).mean(dim=0)
        return torch.cat(normalised, dim=-1) / math.sqrt(len(normalised))

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        pooled = [m.get_image_features(pixel_values=pixel_values.to(_dtype(m)), pooled_only=True).pooler_output
                  for m in self.models]
        return BaseModelOutputWithPooling(pooler_output=self._combine(pooled))

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        pooled = [
            m.get_text_features(input_ids=input_ids, attention_mask=attention_mask, pooled_only=True).pooler_output
            for m in self.models
        ]
        return BaseModelOutputWithPooling(pooler_output=self._combine(pooled))


def _dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _check_shared_inputs(models: Sequence[torch.nn.Module], combine: str) -> None:
    """Members must accept the same processed inputs; "features" also needs one embedding size."""
    def describe(model):
        config = model.config
        shared = {
            "image_size": config.vision_config.image_size,
            "context_length": config.text_config.context_length,
            "vocab_size": config.text_config.vocab_size,
        }
        if combine == "features":
            shared["embed_dim"] = config.embed_dim
        return shared

    reference = describe(models[0])
    for index, model in enumerate(models[1:], start=1):
        other = describe(model)
        differing = {key: (reference[key], other[key]) for key in reference if reference[key] != other[key]}
        if differing:
            raise ValueError(
                f"ensemble member {index} does not match member 0 in {differing} (member 0 value, member {index} "
                "value); members must share image size and tokenizer"
                + (", and embedding size for combine='features' (or use combine='logits')" if combine == "features"
                   else "")
            )


__all__ = ["COMBINE_MODES", "SarclipEnsemble"]
