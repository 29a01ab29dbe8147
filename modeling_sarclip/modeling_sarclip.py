"""SARCLIP model: open_clip's CLIP (ViT or ModifiedResNet image tower, causal text tower) as a PreTrainedModel.

The math reproduces open_clip exactly so that converted official SARCLIP / RemoteCLIP / open_clip checkpoints give
the same embeddings (see convert_open_clip_to_sarclip.py). Attention goes through transformers' attention interface
(PyTorch SDPA by default, "eager" for debugging); the ViT/text blocks support gradient checkpointing.
"""

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_sarclip import SarclipConfig, SarclipTextConfig, SarclipVisionConfig
from .loss_sarclip import contrastive_loss, prompt_classification_loss
from .pipeline_sarclip import SAR_ZERO_SHOT_TASK  # a relative import: the pipeline file travels with every save


@dataclass
class SarclipOutput(ModelOutput):
    """Output of [`SarclipModel`].

    Args:
        loss: symmetric InfoNCE loss over the pairs of all processes (`loss_sarclip.contrastive_loss`), when
            `return_loss=True`.
        logits_per_image: `(image_batch, text_batch)` scaled cosine similarities (this process's pairs).
        logits_per_text: its transpose.
        text_embeds: L2-normalised text embeddings `(text_batch, embed_dim)`.
        image_embeds: L2-normalised image embeddings `(image_batch, embed_dim)`.
        text_model_output / vision_model_output: the towers' outputs.
        logit_scale: the temperature multiplier `exp(logit_scale)` the logits and the loss use (the one field
            `CLIPOutput` lacks; after its fields, so that tuples from `return_dict=False` index like `CLIPModel`'s).
        prompt_loss: with `class_input_ids` and `labels`, the cross-entropy of each image against the prompts of
            every class (`loss_sarclip.prompt_classification_loss`); not added to `loss`.

    Called with `pixel_values` only (e.g. by the image-feature-extraction pipeline), only `image_embeds` and
    `vision_model_output` are set.
    """

    loss: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None
    # after CLIPOutput's fields, so that `return_dict=False` tuples index like CLIPModel's
    logit_scale: torch.Tensor | None = None
    prompt_loss: torch.Tensor | None = None

    def to_tuple(self):
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, is_causal=False, **kwargs):
    """Reference attention (`attn_implementation="eager"`); query/key/value are `(batch, heads, seq, head_dim)`."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if is_causal:
        seq = query.shape[-2]
        causal = torch.ones(seq, seq, dtype=torch.bool, device=query.device).triu(1)
        attn_weights = attn_weights.masked_fill(causal, float("-inf"))
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    return torch.matmul(attn_weights, value).transpose(1, 2).contiguous(), attn_weights


QueryIndex = torch.Tensor | int | None


def pooled_states(hidden_states: torch.Tensor, index: torch.Tensor | int) -> torch.Tensor:
    """`(batch, 1, width)` states at one position per row: `index` an int (the same for every row, e.g. a class token)
    or a `(batch,)` tensor (e.g. each text's end-of-text token)."""
    if isinstance(index, int):
        return hidden_states[:, index : index + 1]
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), index].unsqueeze(1)


def _causal_row_mask(index: torch.Tensor | int, batch: int, seq: int, like: torch.Tensor) -> torch.Tensor:
    """Additive `(batch, 1, 1, seq)` mask letting the query at `index` see the keys up to it (causal attention)."""
    index = torch.as_tensor(index, device=like.device).expand(batch)
    later = torch.arange(seq, device=like.device) > index[:, None]
    return torch.zeros(batch, 1, 1, seq, dtype=like.dtype, device=like.device).masked_fill(
        later[:, None, None], float("-inf"))


class SarclipAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (open_clip's `nn.MultiheadAttention` layout)."""

    def __init__(self, config: SarclipConfig, width: int, heads: int, is_causal: bool):
        super().__init__()
        self.config = config  # the top-level config: `model.set_attn_implementation()` updates it
        self.num_heads = heads
        self.head_dim = width // heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = is_causal
        self.qkv = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, query_index: QueryIndex = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`query_index` (see `pooled_states`) computes the output at that one position per row only: every position
        is still a key and a value (up to it, for causal attention), the result is `(batch, 1, width)`."""
        batch, seq, width = hidden_states.shape
        attention = eager_attention_forward if output_attentions else ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward)
        if query_index is None:
            qkv = self.qkv(hidden_states).view(batch, seq, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            query, key, value, mask, is_causal = qkv[0], qkv[1], qkv[2], None, self.is_causal
        else:
            if type(self.qkv) is nn.Linear:  # the query of the one row, keys and values of all
                query = F.linear(pooled_states(hidden_states, query_index), self.qkv.weight[:width],
                                 self.qkv.bias[:width])
                kv = F.linear(hidden_states, self.qkv.weight[width:], self.qkv.bias[width:])
            else:  # a wrapped projection (peft LoRA) is called as a module, so that its adapters apply
                qkv = self.qkv(hidden_states)
                query, kv = pooled_states(qkv[..., :width], query_index), qkv[..., width:]
            query = query.view(batch, 1, self.num_heads, self.head_dim).transpose(1, 2)
            key, value = kv.view(batch, seq, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            mask, is_causal = _causal_row_mask(query_index, batch, seq, query) if self.is_causal else None, False
        # fused kernels (SDPA) return no weights: the eager path computes them when they are asked for
        out, weights = attention(self, query, key, value, mask, scaling=self.scaling, is_causal=is_causal)
        return self.out_proj(out.reshape(batch, -1, width)), weights if output_attentions else None


class SarclipMLP(nn.Module):
    def __init__(self, width: int, hidden: int, act: str):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = ACT2FN[act]
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class SarclipEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: SarclipConfig, tower: SarclipVisionConfig | SarclipTextConfig, heads: int, causal: bool):
        super().__init__()
        width = tower.width
        self.layer_norm1 = nn.LayerNorm(width, eps=tower.layer_norm_eps)
        self.self_attn = SarclipAttention(config, width, heads, causal)
        self.layer_norm2 = nn.LayerNorm(width, eps=tower.layer_norm_eps)
        self.mlp = SarclipMLP(width, int(width * tower.mlp_ratio), tower.hidden_act)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, query_index: QueryIndex = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """With `query_index`, the block's output at that position only, `(batch, 1, width)`."""
        attended, weights = self.self_attn(self.layer_norm1(hidden_states), output_attentions, query_index)
        if query_index is not None:
            hidden_states = pooled_states(hidden_states, query_index)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.layer_norm2(hidden_states)), weights


class SarclipEncoder(nn.Module):
    def __init__(self, config: SarclipConfig, tower: SarclipVisionConfig | SarclipTextConfig, heads: int, causal: bool):
        super().__init__()
        self.layers = nn.ModuleList(SarclipEncoderLayer(config, tower, heads, causal) for _ in range(tower.layers))

    def forward(
        self, hidden_states: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
        pooled_index: QueryIndex = None,
    ) -> BaseModelOutput:
        """`pooled_index` (the tower's pooled position, see `pooled_states`): the last block runs at that position
        only, and `last_hidden_state` is `(batch, 1, width)`; nothing else reads the last block's other outputs."""
        if pooled_index is not None and (output_hidden_states or output_attentions):
            raise ValueError("pooled_only=True returns the pooled state only: it cannot output hidden states or "
                             "attentions")
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            hidden_states, weights = layer(hidden_states, output_attentions, pooled_index if last else None)
            if output_hidden_states:
                all_hidden += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden, attentions=all_attentions)


class SarclipVisionTransformer(nn.Module):
    """open_clip `VisionTransformer`: patch conv, class token, learned positions, ln_pre, blocks, ln_post, proj."""

    def __init__(self, config: SarclipConfig):
        super().__init__()
        vision = config.vision_config
        width, grid = vision.width, vision.image_size // vision.patch_size
        self.patch_embedding = nn.Conv2d(
            vision.num_channels, width, vision.patch_size, stride=vision.patch_size, bias=False
        )
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.position_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.pre_layernorm = nn.LayerNorm(width, eps=vision.layer_norm_eps)
        self.encoder = SarclipEncoder(config, vision, vision.num_heads, causal=False)
        self.post_layernorm = nn.LayerNorm(width, eps=vision.layer_norm_eps)
        self.projection = nn.Linear(width, config.embed_dim, bias=False)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
        pooled_only: bool = False,
    ) -> BaseModelOutputWithPooling:
        x = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.position_embedding.to(x.dtype)
        encoded = self.encoder(
            self.pre_layernorm(x), output_hidden_states, output_attentions, 0 if pooled_only else None)
        tokens = self.post_layernorm(encoded.last_hidden_state)  # the class token first, alone when pooled_only
        return BaseModelOutputWithPooling(
            last_hidden_state=tokens, pooler_output=self.projection(tokens[:, 0]), hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class SarclipBottleneck(nn.Module):
    """open_clip `Bottleneck`: anti-aliased (avg-pool) stride, expansion 4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.bn3.zero_init = True  # open_clip zero-initialises the last BN of each block
        self.downsample = None
        if stride > 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride), nn.Conv2d(inplanes, out, 1, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


class SarclipAttentionPool(nn.Module):
    """open_clip `AttentionPool2d`: the mean token attends over [mean; spatial tokens] with learned positions."""

    def __init__(self, spatial: int, width: int, heads: int, output_dim: int):
        super().__init__()
        self.num_heads = heads
        self.position_embedding = nn.Parameter(torch.empty(spatial * spatial + 1, width))
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, output_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(2).transpose(1, 2)  # (batch, hw, width)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.position_embedding.to(x.dtype)
        batch, seq, width = x.shape
        head_dim = width // self.num_heads
        q = self.q_proj(x[:, :1]).view(batch, 1, self.num_heads, head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, self.num_heads, head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, self.num_heads, head_dim).transpose(1, 2)
        pooled = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, width)
        return self.c_proj(pooled), x


class SarclipModifiedResNet(nn.Module):
    """open_clip `ModifiedResNet`: 3-conv stem with avg-pool, anti-aliased bottlenecks, attention pooling."""

    def __init__(self, config: SarclipConfig):
        super().__init__()
        vision = config.vision_config
        width = vision.width
        self.conv1 = nn.Conv2d(vision.num_channels, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes, stages = width, []
        for i, blocks in enumerate(vision.layers):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            stage = [SarclipBottleneck(inplanes, planes, stride)]
            inplanes = planes * SarclipBottleneck.expansion
            stage += [SarclipBottleneck(inplanes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.ModuleList(stages)
        self.attnpool = SarclipAttentionPool(vision.image_size // 32, width * 32, vision.num_heads, config.embed_dim)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
        pooled_only: bool = False,
    ) -> BaseModelOutputWithPooling:
        """`output_attentions` gives None: the convolutional tower has no attention layers. `pooled_only` changes
        nothing: the attention pool already has one query, and its tokens cost no extra work."""
        x = pixel_values.to(self.conv1.weight.dtype)
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        x = self.avgpool(F.relu(self.bn3(self.conv3(x)), inplace=True))
        hidden = (x,) if output_hidden_states else None
        for stage in self.stages:
            x = stage(x)
            if output_hidden_states:
                hidden += (x,)
        pooled, tokens = self.attnpool(x)
        return BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=pooled, hidden_states=hidden)


class SarclipTextTransformer(nn.Module):
    """open_clip `TextTransformer`: causal blocks, ln_final, pooled at the end-of-text token, projection."""

    def __init__(self, config: SarclipConfig):
        super().__init__()
        self.config = text = config.text_config
        self.token_embedding = nn.Embedding(text.vocab_size, text.width)
        self.position_embedding = nn.Parameter(torch.empty(text.context_length, text.width))
        self.encoder = SarclipEncoder(config, text, text.heads, causal=True)
        self.final_layer_norm = nn.LayerNorm(text.width, eps=text.layer_norm_eps)
        self.projection = nn.Linear(text.width, config.embed_dim, bias=False)

    def forward(
        self, input_ids: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
        pooled_only: bool = False,
    ) -> BaseModelOutputWithPooling:
        seq = input_ids.shape[1]
        if seq > self.config.context_length:  # a shape check: free, also under torch.compile
            raise ValueError(f"text length {seq} exceeds the model's context_length {self.config.context_length}")
        is_eos = input_ids == self.config.eos_token_id
        # The end-of-text check reads the values: free on CPU tensors, but on an accelerator it would stall the host
        # until the device catches up, and under torch.compile it breaks the graph. There the tokenizer is the
        # guarantee (it always places the token, truncation keeps it, typed "<|endoftext|>" stays text).
        if input_ids.device.type == "cpu" and not torch.compiler.is_compiling() and not is_eos.any(dim=1).all():
            raise ValueError(
                f"every text must contain the end-of-text token (id {self.config.eos_token_id}); "
                "tokenize with the SARCLIP tokenizer and truncate with truncation=True"
            )
        # open_clip pools at argmax(ids), i.e. the first end-of-text token for its vocabulary (EOT has the largest id);
        # pooling at the first EOT directly gives the same index and also works for tokenizers trained here.
        eos_index = is_eos.int().argmax(dim=-1)
        x = self.token_embedding(input_ids) + self.position_embedding[:seq].to(self.token_embedding.weight.dtype)
        encoded = self.encoder(x, output_hidden_states, output_attentions, eos_index if pooled_only else None)
        tokens = self.final_layer_norm(encoded.last_hidden_state)
        pooled = tokens[:, 0] if pooled_only else pooled_states(tokens, eos_index)[:, 0]
        return BaseModelOutputWithPooling(
            last_hidden_state=tokens, pooler_output=self.projection(pooled), hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class SarclipPreTrainedModel(PreTrainedModel):
    config_class = SarclipConfig
    config: SarclipConfig
    base_model_prefix = "sarclip"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["SarclipEncoderLayer", "SarclipBottleneck"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """open_clip's initialisation where it defines one; PyTorch defaults (which open_clip keeps) elsewhere.

        Choice: open_clip leaves the ViT blocks at PyTorch defaults but gives the text blocks a depth-scaled normal
        init; we use the text-tower scheme for both towers, as transformers' CLIP does.
        """
        if isinstance(module, SarclipEncoder):
            layers = len(module.layers)
            for layer in module.layers:
                width = layer.layer_norm1.normalized_shape[0]
                proj_std = width**-0.5 * (2 * layers) ** -0.5
                init.normal_(layer.self_attn.qkv.weight, std=width**-0.5)
                init.normal_(layer.self_attn.out_proj.weight, std=proj_std)
                init.normal_(layer.mlp.fc1.weight, std=(2 * width) ** -0.5)
                init.normal_(layer.mlp.fc2.weight, std=proj_std)
                for linear in (layer.self_attn.qkv, layer.self_attn.out_proj, layer.mlp.fc1, layer.mlp.fc2):
                    init.zeros_(linear.bias)
        elif isinstance(module, SarclipVisionTransformer):
            scale = module.class_embedding.shape[0] ** -0.5
            init.normal_(module.class_embedding, std=scale)
            init.normal_(module.position_embedding, std=scale)
            init.normal_(module.projection.weight, std=scale)
            init.kaiming_uniform_(module.patch_embedding.weight, a=math.sqrt(5))
        elif isinstance(module, SarclipTextTransformer):
            init.normal_(module.token_embedding.weight, std=0.02)
            init.normal_(module.position_embedding, std=0.01)
            init.normal_(module.projection.weight, std=module.config.width**-0.5)
        elif isinstance(module, SarclipAttentionPool):
            width = module.q_proj.in_features
            init.normal_(module.position_embedding, std=width**-0.5)
            for linear in (module.q_proj, module.k_proj, module.v_proj, module.c_proj):
                init.normal_(linear.weight, std=width**-0.5)
                init.zeros_(linear.bias)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        elif isinstance(module, nn.BatchNorm2d):
            (init.zeros_ if getattr(module, "zero_init", False) else init.ones_)(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, SarclipModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)


class SarclipModel(SarclipPreTrainedModel):
    """SARCLIP dual encoder. `forward` returns CLIP-style logits and, with `return_loss=True`, the InfoNCE loss."""

    def __init__(self, config: SarclipConfig):
        super().__init__(config)
        vision_cls = SarclipModifiedResNet if config.vision_config.is_resnet else SarclipVisionTransformer
        self.vision_model = vision_cls(config)
        self.text_model = SarclipTextTransformer(config)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `register_for_auto_class` keeps one Auto class per model class, but SarclipModel serves two (like CLIPModel):
        # list both in the saved config so trust_remote_code loading works through either. The SAR zero-shot
        # pipeline (float dB / dual-pol files and arrays) travels with the folder as a custom pipeline.
        if self._auto_class is not None:
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            for auto_class in ("AutoModel", "AutoModelForZeroShotImageClassification"):
                auto_map[auto_class] = f"modeling_sarclip.{type(self).__name__}"
            self.config.auto_map = auto_map
            self.config.custom_pipelines = {SAR_ZERO_SHOT_TASK: {
                "impl": "pipeline_sarclip.SarZeroShotImageClassificationPipeline",
                "pt": ["AutoModelForZeroShotImageClassification"], "type": "multimodal"}}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        pipeline_file = Path(__file__).with_name("pipeline_sarclip.py")
        if self._auto_class is not None and pipeline_file.is_file():
            shutil.copy(pipeline_file, Path(save_directory) / pipeline_file.name)
        return result

    def get_input_embeddings(self) -> nn.Module:
        return self.text_model.token_embedding

    def set_input_embeddings(self, value: nn.Module):
        self.text_model.token_embedding = value

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        pooled_only: bool = False,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Text tower; `pooler_output` is the projected, un-normalised embedding (open_clip `encode_text`), as in
        transformers' `CLIPModel.get_text_features`.

        `attention_mask` is accepted for API compatibility and not needed: attention is causal and pooling happens at
        the end-of-text token, so right padding never reaches the embedding. `pooled_only=True` (for callers that
        read `pooler_output` only: training, indexing) runs the last block at the end-of-text token alone, the same
        embedding for about 1/12 less work; `last_hidden_state` then holds that one token, `(batch, 1, width)`.
        """
        return self.text_model(input_ids, output_hidden_states, output_attentions, pooled_only)

    @can_return_tuple
    def get_image_features(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
        pooled_only: bool = False, **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Image tower; `pooler_output` is the projected, un-normalised embedding (open_clip `encode_image`).
        `pooled_only=True`: as in `get_text_features`, the last block at the class token alone (ViT towers)."""
        return self.vision_model(pixel_values, output_hidden_states, output_attentions, pooled_only)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        group_ids: torch.Tensor | None = None,
        class_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pooled_only: bool = False,
        **kwargs,
    ) -> SarclipOutput:
        """CLIP-style forward. `return_loss=True` adds the contrastive loss over the pairs of all processes;
        `group_ids` (one integer per pair) makes pairs with equal ids positives for each other (repeated captions,
        same class). `class_input_ids` (one prompt per class, `(num_classes, length)`) with `labels` (the class of each
        image) add `prompt_loss`, the zero-shot classifier's cross-entropy. `pooled_only=True` (the trainer's) runs each
        tower's last block at its pooled token only: the same embeddings and loss for less work, and the towers'
        `last_hidden_state` hold that token alone. `return_dict=False` returns a tuple."""
        if pixel_values is None:
            raise ValueError("SarclipModel.forward needs pixel_values (use get_text_features for text alone)")
        vision_outputs = self.get_image_features(
            pixel_values, output_hidden_states, output_attentions, pooled_only=pooled_only)
        image_embeds = F.normalize(vision_outputs.pooler_output, dim=-1)
        if input_ids is None:
            if return_loss:
                raise ValueError("return_loss=True needs input_ids as well as pixel_values")
            return SarclipOutput(image_embeds=image_embeds, vision_model_output=vision_outputs)
        text_outputs = self.get_text_features(
            input_ids, attention_mask, output_hidden_states, output_attentions, pooled_only=pooled_only)
        text_embeds = F.normalize(text_outputs.pooler_output, dim=-1)
        logit_scale = self.logit_scale.exp()
        logits_per_image = logit_scale * image_embeds @ text_embeds.t()
        loss = contrastive_loss(image_embeds, text_embeds, logit_scale, group_ids) if return_loss else None
        prompt_loss = None
        if class_input_ids is not None:
            if labels is None:
                raise ValueError("class_input_ids needs labels (the class index of each image)")
            class_embeds = F.normalize(
                self.get_text_features(class_input_ids, pooled_only=pooled_only).pooler_output, dim=-1)
            prompt_loss = prompt_classification_loss(image_embeds, class_embeds, logit_scale, labels)
        return SarclipOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_image.t(),
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            logit_scale=logit_scale,
            text_model_output=text_outputs,
            vision_model_output=vision_outputs,
            prompt_loss=prompt_loss,
        )


__all__ = ["SarclipModel", "SarclipOutput", "SarclipPreTrainedModel"]
