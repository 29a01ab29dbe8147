"""The module that training wraps with Accelerate: both towers plus the temperature in one forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ContrastiveEncoder(nn.Module):
    """`forward(pixel_values, input_ids)` -> (normalised image embeds, normalised text embeds, exp(logit_scale)).

    One forward that returns everything the loss reads, so data-parallel wrappers (DDP) see every trainable
    parameter, `logit_scale` included. `model` is a `SarclipModel` or a peft model around one.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor):
        image = self.model.get_image_features(pixel_values=pixel_values).pooler_output
        text = self.model.get_text_features(input_ids=input_ids).pooler_output
        logit_scale = self.model.logit_scale.exp()
        return F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1), logit_scale.float()
