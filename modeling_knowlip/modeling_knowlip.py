"""SAR-KnowLIP (paper sections 3.3-3.4) on transformers' ViT and BERT building blocks.

Towers: ViT image encoder f_v, BERT text encoder f_t (ITC, eq. 4), BERT fusion layers cross-attending to the image
tokens (ITM, eq. 5), and a causal cross-attending BERT decoder that regenerates masked fragments (MLM, eq. 6).
ITC uses ALBEF's momentum encoders, feature queues and momentum distillation (paper ref. [52], alpha of 4.1).
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertLMHeadModel, BertModel, PreTrainedModel, ViTModel
from transformers import initialization as init
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput
from transformers.models.bert.modeling_bert import BertEncoder, BertPreTrainedModel
from transformers.utils import ModelOutput, logging

from .configuration_knowlip import CROSS_ATTENTION, SarKnowlipConfig
from .losses_knowlip import (
    gather_from_all_processes,
    itc_targets,
    itm_loss,
    lm_loss,
    momentum_update,
    pairwise_itc_loss,
    positive_mask,
    same_id,
    sample_hard_negatives,
    soft_contrastive_loss,
)
from .masking_knowlip import collapse_fragments, content_tokens, sample_fragment_mask
from .queue_knowlip import SarKnowlipFeatureQueue

logger = logging.get_logger(__name__)


@dataclass
class SarKnowlipOutput(ModelOutput):
    """Pre-training output. Losses are present with `return_loss=True` (a loss whose weight is 0 is not computed);
    `loss_region` only in VQA fine-tuning with region labels (`SarKnowlipForQuestionAnswering`).

    sim_i2t / sim_t2i: ITC logits s/tau of each image (text) against the batch's momentum texts (images) followed by
    the queue, (B, B + queue_size); without losses they are the in-batch (B, B) logits of the online features.
    itm_logits / itm_labels: (3B, 2) / (3B,) for positives, hard-negative texts, hard-negative images (fewer negatives
    where a sample's whole batch is in its positive group; None and loss_itm 0 where no sample has one); without losses
    (B, 2) for the given pairs. mlm_logits / mlm_labels: decoder logits and targets (-100 = ignored) of eq. 6.
    """

    loss: torch.Tensor | None = None
    loss_itc: torch.Tensor | None = None
    loss_itm: torch.Tensor | None = None
    loss_mlm: torch.Tensor | None = None
    loss_region: torch.Tensor | None = None
    sim_i2t: torch.Tensor | None = None
    sim_t2i: torch.Tensor | None = None
    itm_logits: torch.Tensor | None = None
    itm_labels: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    mlm_labels: torch.Tensor | None = None
    image_feats: torch.Tensor | None = None
    text_feats: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


@dataclass
class SarKnowlipPairScores(ModelOutput):
    """Per-pair scores SCIO compares (eqs. 10-11, 14-15), each of shape (B,).

    itc_loss: symmetric eq. 4 loss of pair i, with the feature queues as the negatives t' / v'.
    itm_score: ITM match probability p of eq. 5 (the s_i of eq. 11).
    itc_rank: share of the queued texts that image i finds less similar than its own text i (momentum features on
        both sides; 1: its own text beats every queued text; a text of another class ranks low). SCIO's pair
        screening uses it.
    itc_uniform: the ITC loss of a guess with no preference, ln of the number of candidates in pair i's softmax (its
        positive and the queue entries left as its negatives); an itc_loss above it means the model finds the text
        less likely for its image than chance (SCIO's pair screening).
    """

    itc_loss: torch.Tensor | None = None
    itm_score: torch.Tensor | None = None
    itc_rank: torch.Tensor | None = None
    itc_uniform: torch.Tensor | None = None


@dataclass
class SarKnowlipRetrievalOutput(ModelOutput):
    """ITC top-k candidates re-ranked by the ITM match logit, best first.

    itc_similarity: (N_images, N_texts) cosine similarities. i2t_indices / i2t_scores: (N_images, k) text indices and
    their ITM logits; t2i_indices / t2i_scores: (N_texts, k) image indices and logits.
    """

    itc_similarity: torch.Tensor | None = None
    i2t_indices: torch.Tensor | None = None
    i2t_scores: torch.Tensor | None = None
    t2i_indices: torch.Tensor | None = None
    t2i_scores: torch.Tensor | None = None


class SarKnowlipFusionEncoder(BertPreTrainedModel):
    """ALBEF's fusion encoder from transformers' `BertLayer`s: per layer, bidirectional self-attention over the text,
    cross-attention to the image tokens, feed-forward.

    `BertLayer` only builds cross-attention for decoders (config.is_decoder=True), which makes its self-attention
    causal; here the self-attention is made bidirectional again (`is_causal=False` and a bidirectional mask).
    """

    def __init__(self, config):
        super().__init__(config)
        self.encoder = BertEncoder(config)
        for layer in self.encoder.layer:
            layer.attention.self.is_causal = False
        self.post_init()

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                image_embeds: torch.Tensor) -> torch.Tensor:
        """hidden_states: text encoder output (B, L, D_t); image_embeds: image tokens already in D_t. -> (B, L, D_t)."""
        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
        )
        return self.encoder(hidden_states, attention_mask=attention_mask, encoder_hidden_states=image_embeds).last_hidden_state


def _apply_ln_pre(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    return module.ln_pre(output)


def build_vision_model(config: SarKnowlipConfig) -> ViTModel:
    """The ViT image tower; with `config.vision_ln_pre` its embeddings module gets an open_clip-style `ln_pre`
    LayerNorm applied to its output (patches + class token + positions), before the first block.

    (A forward hook rather than a ViT subclass: the weights stay ViT's plus `embeddings.ln_pre.*`, and a plain ViT
    checkpoint loads into it with only `ln_pre` new.)
    """
    vision = ViTModel(config.vision_config, add_pooling_layer=False)
    if config.vision_ln_pre:
        vision.embeddings.ln_pre = nn.LayerNorm(config.vision_config.hidden_size,
                                                eps=config.vision_config.layer_norm_eps)
        vision.embeddings.register_forward_hook(_apply_ln_pre)
    return vision


def interpolate_position_embeddings(position_embeddings: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + g * g, D) ViT position embeddings -> (1, 1 + grid * grid, D): the class token's position kept, the
    g x g patch positions resized bicubically to grid x grid (as BLIP's `interpolate_pos_embed`)."""
    cls_position, patches = position_embeddings[:, :1], position_embeddings[:, 1:]
    side = round(patches.shape[1] ** 0.5)
    if side * side != patches.shape[1]:
        raise ValueError(f"position embeddings of {patches.shape[1]} patches are not a square grid")
    if side == grid:
        return position_embeddings.clone()
    patches = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches.float(), size=(grid, grid), mode="bicubic", align_corners=False)
    patches = patches.to(position_embeddings.dtype).permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return torch.cat([cls_position, patches], dim=1)


def pool_tokens(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """(B, L, D) token states -> (B, D): the first ([CLS]) state, or the mean over the attended tokens."""
    if pooling == "cls":
        return hidden_states[:, 0]
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    weights = attention_mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


# Every task head under its transformers Auto class, written into each saved folder's `auto_map` whichever head saved
# it (so `AutoModelForVisualQuestionAnswering.from_pretrained(folder, trust_remote_code=True)` works on a checkpoint
# saved from `SarKnowlipModel`). transformers has no Auto class for image-text retrieval: load
# `SarKnowlipForImageTextRetrieval.from_pretrained(folder)` (its weights are the `AutoModel` ones).
AUTO_CLASSES = {
    "AutoModel": "SarKnowlipModel",
    "AutoModelForImageTextToText": "SarKnowlipForConditionalGeneration",
    "AutoModelForVisualQuestionAnswering": "SarKnowlipForQuestionAnswering",
    "AutoModelForImageClassification": "SarKnowlipForImageClassification",
}


class SarKnowlipPreTrainedModel(PreTrainedModel):
    config: SarKnowlipConfig
    config_class = SarKnowlipConfig
    base_model_prefix = "sar_knowlip"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["ViTLayer", "BertLayer"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with all task heads in the saved `auto_map` (see `AUTO_CLASSES`)."""
        module = __name__.rsplit(".", 1)[-1]
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}),
                                **{auto: f"{module}.{name}" for auto, name in AUTO_CLASSES.items()}}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def with_image_size(self, image_size: int) -> "SarKnowlipPreTrainedModel":
        """A copy of this model for `image_size`-pixel inputs: the position embeddings of every ViT tower (momentum
        tower included) interpolated to the new patch grid, `config.vision_config.image_size` updated. BLIP fine-tunes
        VQA at 480 px what it pre-trained at 224 px the same way (its `interpolate_pos_embed`)."""
        patch = self.config.vision_config.patch_size
        if image_size < patch or image_size % patch:
            raise ValueError(f"image_size must be a positive multiple of the ViT patch size {patch}, got {image_size}")
        config = copy.deepcopy(self.config)
        config.vision_config.image_size = image_size
        state = {name: interpolate_position_embeddings(tensor, image_size // patch)
                 if name.endswith("embeddings.position_embeddings") and tensor.ndim == 3 else tensor
                 for name, tensor in self.state_dict().items()}
        model = type(self)(config)
        model.load_state_dict(state)
        return model

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, SarKnowlipFeatureQueue):
            init.copy_(module.image_feats, F.normalize(torch.randn_like(module.image_feats), dim=1))
            init.copy_(module.text_feats, F.normalize(torch.randn_like(module.text_feats), dim=1))
            init.constant_(module.image_ids, -1)
            init.constant_(module.group_ids, -1)
            init.zeros_(module.ptr)
        elif isinstance(module, SarKnowlipModel):
            init.constant_(module.temp, self.config.temp)
            if self.config.cross_attention_init == "fan_in":
                for linear in module.cross_modal_linears():
                    init.normal_(linear.weight, mean=0.0, std=linear.in_features ** -0.5)
                    init.zeros_(linear.bias)
            # Momentum encoders start as exact copies of the online ones (ALBEF `copy_params`).
            for online, momentum in module.momentum_pairs():
                for param, param_m in zip(online.parameters(), momentum.parameters(), strict=True):
                    init.copy_(param_m, param)
        else:
            super()._init_weights(module)


class SarKnowlipModel(SarKnowlipPreTrainedModel):
    """SAR-KnowLIP for pre-training with L_total = l1 L_ITC + l2 L_ITM + l3 L_MLM (eq. 7).

    Also the API the SCIO trainer needs: `score_pairs` (per-sample ITC loss and ITM score), `mlm_exclude_mask` in
    `forward` (noise-pool tokens are never MLM targets) and `generate` (regenerate a [MASK]ed fragment, eq. 13).
    Momentum update and enqueueing happen only in training mode, so evaluating a loss never changes the model.
    """

    _tied_weights_keys = {
        "text_decoder.cls.predictions.decoder.weight": "text_decoder.bert.embeddings.word_embeddings.weight",
        "text_decoder.cls.predictions.decoder.bias": "text_decoder.cls.predictions.bias",
    }

    def __init__(self, config: SarKnowlipConfig):
        super().__init__(config)
        vision_width, text_width = config.vision_config.hidden_size, config.text_config.hidden_size
        self.vision_model = build_vision_model(config)
        self.text_encoder = BertModel(config.text_config, add_pooling_layer=False)
        self.fusion_encoder = SarKnowlipFusionEncoder(config.cross_encoder_config)
        self.text_decoder = BertLMHeadModel(config.decoder_config)
        # BERT's cross-attention reads inputs of the text width; ViT-L tokens (1024) need a projection.
        self.image_to_text = (
            nn.Identity() if vision_width == text_width else nn.Linear(vision_width, text_width)
        )
        self.vision_proj = nn.Linear(vision_width, config.embed_dim)
        self.text_proj = nn.Linear(text_width, config.embed_dim)
        self.itm_head = nn.Linear(text_width, 2)
        self.temp = nn.Parameter(torch.tensor(config.temp))

        self.vision_model_m = build_vision_model(config)
        self.vision_proj_m = nn.Linear(vision_width, config.embed_dim)
        self.text_encoder_m = BertModel(config.text_config, add_pooling_layer=False)
        self.text_proj_m = nn.Linear(text_width, config.embed_dim)
        for _, momentum in self.momentum_pairs():
            momentum.requires_grad_(False)
        self.queue = SarKnowlipFeatureQueue(config.embed_dim, config.queue_size)
        self.post_init()

    def cross_modal_linears(self) -> list[nn.Linear]:
        """The image-to-text projection and the Linear layers of every cross-attention block (fusion encoder and
        decoder): what `config.cross_attention_init` initialises."""
        blocks = [self.image_to_text] + [layer.crossattention for layer in self.fusion_encoder.encoder.layer] + \
            [layer.crossattention for layer in self.text_decoder.bert.encoder.layer]
        return [sub for block in blocks for sub in block.modules() if isinstance(sub, nn.Linear)]

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, momentum) module pairs updated by EMA."""
        return [
            (self.vision_model, self.vision_model_m),
            (self.vision_proj, self.vision_proj_m),
            (self.text_encoder, self.text_encoder_m),
            (self.text_proj, self.text_proj_m),
        ]

    def get_input_embeddings(self) -> nn.Module:
        return self.text_encoder.get_input_embeddings()

    # ----- encoders -----

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> image token states (B, 1 + patches, D_v) and the L2-normalised ITC feature f_v (B, embed_dim)."""
        image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
        return image_embeds, F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> text token states (B, L, D_t) and the L2-normalised ITC feature f_t (B, embed_dim)."""
        text_embeds = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return text_embeds, F.normalize(self.text_proj(self.pool_text(text_embeds, attention_mask)), dim=-1)

    def pool_text(self, text_embeds: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The text encoder's pooled state for ITC (`config.text_pooling`); every text feature path uses it."""
        return pool_tokens(text_embeds, attention_mask, self.config.text_pooling)

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        """The transformers CLIP contract: `pooler_output` is the projected, un-normalised ITC feature (B, embed_dim),
        `last_hidden_state` the ViT token states. (`encode_image` gives the normalised feature.)"""
        image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
        pooled = self.vision_proj(image_embeds[:, 0])
        return BaseModelOutputWithPooling(last_hidden_state=image_embeds, pooler_output=pooled)

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """As `get_image_features`, for the BERT text encoder's pooled state (`config.text_pooling`)."""
        text_embeds = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.text_proj(self.pool_text(text_embeds, attention_mask))
        return BaseModelOutputWithPooling(last_hidden_state=text_embeds, pooler_output=pooled)

    def fuse(self, text_embeds: torch.Tensor, attention_mask: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """Fusion encoder states (B, L, D_t) of text tokens cross-attending to the image tokens (B, N, D_v)."""
        return self.fusion_encoder(text_embeds, attention_mask, self.image_to_text(image_embeds))

    def itm_logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
        """ITM logits (B, 2) [no match, match] of the aligned pairs (image i, text i), from the fusion encoder's
        states pooled by `config.itm_pooling`."""
        fused = self.fuse(text_embeds, attention_mask, image_embeds)
        return self.itm_head(pool_tokens(fused, attention_mask, self.config.itm_pooling))

    # ----- pre-training -----

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_ids: torch.Tensor | None = None,
        group_ids: torch.Tensor | None = None,
        mlm_mask: torch.Tensor | None = None,
        mlm_exclude_mask: torch.Tensor | None = None,
        alpha: float | None = None,
        return_loss: bool = False,
    ) -> SarKnowlipOutput:
        r"""
        image_ids (`(B,)` long, >= 0, optional): samples (and queue entries) with the same id are all positives in
            ITC and never ITM negatives (several texts of one image). Without it only the own pair is positive.
        group_ids (`(B,)` long, >= 0, optional): samples (and queue entries) with the same group id are positives
            too (multi-positive ITC targets, never ITM negatives): the same caption string
            (`caption_group_id`), or the same class where the data has labels.
        mlm_mask (`(B, L)` bool, optional): the fragment to mask and regenerate, one contiguous run of text tokens
            per row (or none); default: `default_mlm_mask` (a random span avoiding `mlm_exclude_mask`).
        mlm_exclude_mask (`(B, L)` bool, optional): tokens that must never be MLM targets (SCIO's noise pool);
            ITC and ITM still see the full text.
        alpha (optional): momentum-distillation weight for this step (default `config.alpha`), e.g. for ALBEF's
            warm-up alpha * min(1, step / steps_per_epoch).
        return_loss: compute the pre-training losses (ITC, ITM, MLM; training mode also updates the momentum
            encoders and the queues). Default False, as transformers models return no loss unless asked.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        image_embeds, image_feat = self.encode_image(pixel_values)
        text_embeds, text_feat = self.encode_text(input_ids, attention_mask)
        if not return_loss:
            temp = self.temp.clamp(0.001, 0.5)
            return SarKnowlipOutput(
                sim_i2t=image_feat @ text_feat.t() / temp,
                sim_t2i=text_feat @ image_feat.t() / temp,
                itm_logits=self.itm_logits(image_embeds, text_embeds, attention_mask),
                image_feats=image_feat,
                text_feats=text_feat,
                image_embeds=image_embeds,
                text_embeds=text_embeds,
            )
        if image_ids is not None and (image_ids < 0).any():
            raise ValueError("image_ids must be >= 0 (-1 marks empty queue slots)")
        if group_ids is not None and (group_ids < 0).any():
            raise ValueError("group_ids must be >= 0 (-1 marks empty queue slots)")
        alpha = self.config.alpha if alpha is None else alpha
        batch_size = input_ids.shape[0]

        # ITC, eq. 4, with ALBEF momentum distillation: targets = alpha * momentum similarities + (1 - alpha) * labels.
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)
            if self.training:
                for online, momentum in self.momentum_pairs():
                    momentum_update(online, momentum, self.config.momentum)
            image_feat_m = F.normalize(self.vision_proj_m(self.vision_model_m(pixel_values).last_hidden_state[:, 0]), dim=-1)
            text_out_m = self.text_encoder_m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            text_feat_m = F.normalize(self.text_proj_m(self.pool_text(text_out_m, attention_mask)), dim=-1)
            image_bank = torch.cat([image_feat_m, self.queue.image_feats.clone()])
            text_bank = torch.cat([text_feat_m, self.queue.text_feats.clone()])
            bank_ids = None if image_ids is None else torch.cat([image_ids, self.queue.image_ids.clone()])
            bank_groups = None if group_ids is None else torch.cat([group_ids, self.queue.group_ids.clone()])
            positives = positive_mask(image_ids, bank_ids, batch_size, image_bank.shape[0], input_ids.device,
                                      group_ids, bank_groups)
            i2t_targets = itc_targets(positives, image_feat_m @ text_bank.t() / self.temp, alpha)
            t2i_targets = itc_targets(positives, text_feat_m @ image_bank.t() / self.temp, alpha)
        sim_i2t = image_feat @ text_bank.t() / self.temp
        sim_t2i = text_feat @ image_bank.t() / self.temp
        loss_itc = (soft_contrastive_loss(sim_i2t, i2t_targets) + soft_contrastive_loss(sim_t2i, t2i_targets)) / 2
        loss = self.config.itc_weight * loss_itc

        loss_itm = itm_logits = itm_labels = None
        if self.config.itm_weight > 0:
            itm_logits, itm_labels = self._itm_with_hard_negatives(
                image_embeds, text_embeds, attention_mask, sim_i2t[:, :batch_size], sim_t2i[:, :batch_size],
                positives[:, :batch_size],
            )
            loss_itm = loss_itc * 0.0 if itm_logits is None else itm_loss(itm_logits, itm_labels)
            loss = loss + self.config.itm_weight * loss_itm

        loss_mlm = mlm_logits = mlm_labels = None
        if self.config.mlm_weight > 0:
            mlm_logits, mlm_labels = self._masked_fragment_lm(
                image_embeds, input_ids, attention_mask, mlm_mask, mlm_exclude_mask
            )
            loss_mlm = lm_loss(mlm_logits, mlm_labels)
            loss = loss + self.config.mlm_weight * loss_mlm

        if self.training:
            self.queue.enqueue(
                gather_from_all_processes(image_feat_m),
                gather_from_all_processes(text_feat_m),
                None if image_ids is None else gather_from_all_processes(image_ids),
                None if group_ids is None else gather_from_all_processes(group_ids),
            )
        return SarKnowlipOutput(
            loss=loss, loss_itc=loss_itc, loss_itm=loss_itm, loss_mlm=loss_mlm,
            sim_i2t=sim_i2t, sim_t2i=sim_t2i, itm_logits=itm_logits, itm_labels=itm_labels,
            mlm_logits=mlm_logits, mlm_labels=mlm_labels, image_feats=image_feat, text_feats=text_feat,
            image_embeds=image_embeds, text_embeds=text_embeds,
        )

    def _itm_with_hard_negatives(self, image_embeds, text_embeds, attention_mask, sim_i2t, sim_t2i, positives):
        """Eq. 5 on B positive pairs, B (image, hard negative text) and B (hard negative image, text) pairs; the
        negatives are drawn from the in-batch ITC similarities (ALBEF), never a positive."""
        # positives (B, B) holds the same image and the same caption/class group: no such pair is a negative. A row
        # whose whole batch is in its group has no negative and adds only its positive pair.
        with torch.no_grad():
            negative_images = sample_hard_negatives(sim_t2i, positives.t(), allow_none=True)
            negative_texts = sample_hard_negatives(sim_i2t, positives, allow_none=True)
        has_image, has_text = negative_images.ge(0), negative_texts.ge(0)
        if not (has_image.any() or has_text.any()):
            return None, None  # a batch of one image or one group: no ITM this step (forward reports loss 0)
        texts = torch.cat([text_embeds, text_embeds[has_image], text_embeds[negative_texts[has_text]]])
        masks = torch.cat([attention_mask, attention_mask[has_image], attention_mask[negative_texts[has_text]]])
        images = torch.cat([image_embeds, image_embeds[negative_images[has_image]], image_embeds[has_text]])
        logits = self.itm_logits(images, texts, masks)
        batch_size = text_embeds.shape[0]
        negatives = int(has_image.sum() + has_text.sum())
        labels = torch.cat([torch.ones(batch_size), torch.zeros(negatives)]).long().to(logits.device)
        return logits, labels

    def default_mlm_mask(self, content: torch.Tensor, mlm_exclude_mask: torch.Tensor | None) -> torch.Tensor:
        """The fragment to mask when `forward` gets no `mlm_mask`: one random span (see masking_knowlip)."""
        return sample_fragment_mask(content, self.config.mlm_span_fraction, mlm_exclude_mask)

    def _masked_fragment_lm(self, image_embeds, input_ids, attention_mask, mlm_mask, mlm_exclude_mask):
        """Eq. 6: collapse the fragment to [MASK], encode text + image (fusion), let the decoder rewrite it."""
        config = self.config
        special = [config.cls_token_id, config.sep_token_id, config.mask_token_id, config.pad_token_id]
        content = content_tokens(input_ids, attention_mask, special)
        if mlm_mask is None:
            mlm_mask = self.default_mlm_mask(content, mlm_exclude_mask)
        elif mlm_exclude_mask is not None and (mlm_mask.bool() & mlm_exclude_mask.bool()).any():
            raise ValueError("mlm_mask marks tokens that mlm_exclude_mask excludes from MLM targets")
        batch = collapse_fragments(
            input_ids, attention_mask, mlm_mask, content,
            config.cls_token_id, config.sep_token_id, config.mask_token_id, config.pad_token_id,
        )
        context = self.text_encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        fused = self.fuse(context, batch.attention_mask, image_embeds)
        logits = self.text_decoder(
            input_ids=batch.decoder_input_ids,
            attention_mask=batch.decoder_attention_mask,
            encoder_hidden_states=fused,
            encoder_attention_mask=batch.attention_mask,
            use_cache=False,
        ).logits
        return logits, batch.labels

    # ----- SCIO scoring and reconstruction -----

    @torch.no_grad()
    def score_pairs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        image_ids: torch.Tensor | None = None,
        group_ids: torch.Tensor | None = None,
    ) -> SarKnowlipPairScores:
        """Per-sample ITC loss and ITM match probability of the aligned pairs (image i, text i).

        Give `pixel_values`, or `image_embeds` from `encode_image` to score many texts of one image without
        re-encoding it (repeat its rows). The ITC negatives are the current queues, so compare scores taken with the
        same queue state (one SCIO screening pass without training steps in between); with `image_ids` (and
        `group_ids`), queue entries of the pair's own image (and of its caption/class group) are left out of its
        negatives, the positive rule of `forward`.
        """
        if (pixel_values is None) == (image_embeds is None):
            raise ValueError("score_pairs needs exactly one of pixel_values or image_embeds")
        if image_embeds is None:
            image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)
        text_embeds, text_feat = self.encode_text(input_ids, attention_mask)
        temp = self.temp.clamp(0.001, 0.5)
        own_entries = None
        if image_ids is not None:
            own_entries = same_id(image_ids, self.queue.image_ids)
        if group_ids is not None:
            same_group = same_id(group_ids, self.queue.group_ids)
            own_entries = same_group if own_entries is None else own_entries | same_group
        negatives = torch.full((len(image_feat),), self.queue.text_feats.shape[0], device=image_feat.device)
        if own_entries is not None:
            negatives = negatives - own_entries.sum(dim=1)
        return SarKnowlipPairScores(
            itc_loss=pairwise_itc_loss(image_feat, text_feat, self.queue.image_feats, self.queue.text_feats, temp,
                                       own_entries),
            itm_score=self.itm_logits(image_embeds, text_embeds, attention_mask).softmax(dim=-1)[:, 1],
            itc_rank=self._queue_rank(image_feat, input_ids, attention_mask),
            itc_uniform=torch.log1p(negatives.float()),
        )

    def _queue_rank(self, image_feat: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
        """Share of the queued texts each image finds less similar than its own text. The queue holds momentum-encoder
        features, so the own text is taken through the momentum encoder too (the online and momentum features are
        not on one scale)."""
        text_out_m = self.text_encoder_m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        text_feat_m = F.normalize(self.text_proj_m(self.pool_text(text_out_m, attention_mask)), dim=-1)
        own = (image_feat * text_feat_m).sum(dim=1, keepdim=True)
        return (image_feat @ self.queue.text_feats.t() < own).float().mean(dim=1)

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.LongTensor:
        """Write the fragment behind the one [MASK] of each context text, from image + context (eqs. 12-13).

        Returns the decoder's token ids (B, T): [CLS], the fragment, [SEP] (then padding); decode with
        `skip_special_tokens=True`. `generate_kwargs` go to `GenerationMixin.generate` (max_new_tokens, num_beams...).
        """
        if (pixel_values is None) == (image_embeds is None):
            raise ValueError("generate needs exactly one of pixel_values or image_embeds")
        if input_ids is None:
            raise ValueError("generate needs input_ids: the context text with one [MASK] where the fragment goes")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask_counts = (input_ids.eq(self.config.mask_token_id) & attention_mask.bool()).sum(1)
        if mask_counts.ne(1).any():
            raise ValueError(f"each context text needs exactly one [MASK] token, got counts {mask_counts.tolist()}")
        if image_embeds is None:
            image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
        context = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        fused = self.fuse(context, attention_mask, image_embeds)
        start = torch.full((input_ids.shape[0], 1), self.config.cls_token_id, dtype=torch.long, device=input_ids.device)
        # generate() would make a decoder-only DynamicCache; BERT's cross-attention layers need the encoder-decoder one.
        decoder_config = self.text_decoder.config
        cache = EncoderDecoderCache(DynamicCache(config=decoder_config), DynamicCache(config=decoder_config))
        return self.text_decoder.generate(
            input_ids=start,
            past_key_values=cache,
            encoder_hidden_states=fused,
            encoder_attention_mask=attention_mask,
            bos_token_id=self.config.cls_token_id,
            eos_token_id=self.config.sep_token_id,
            pad_token_id=self.config.pad_token_id,
            **generate_kwargs,
        )

    # ----- initialisation from tower checkpoints -----

    @classmethod
    def from_vision_text_pretrained(cls, vision_model_path, text_model_path: str,
                                    num_fusion_layers: int | None = None,
                                    vision_projection: torch.Tensor | None = None, **config_kwargs):
        """Initialise from a local ViT checkpoint and a local BERT-family checkpoint (paper 4.1: ImageNet ViT + BERT).

        Of the BERT checkpoint's L layers, the first L - F become the text encoder and the last F the self-attention
        and feed-forward of the fusion layers (F = `num_fusion_layers`, default L // 2: ALBEF's 6 + 6 split of
        BERT-base); the decoder takes the embeddings and all L layers (as BLIP's decoder). Cross-attention, the
        decoder's prediction transform, projections, ITM head and queues are new. `config_kwargs` set the other
        `SarKnowlipConfig` fields (special-token ids default to BERT-uncased's).

        `vision_model_path` may also be a `(ViTConfig, state_dict)` pair (e.g. SARCLIP's image tower converted by
        `train.knowlip.towers`); a state dict with `embeddings.ln_pre.*` turns `vision_ln_pre` on.
        `vision_projection` (embed_dim, D_v), if given, initialises the ITC image projection (bias 0).
        """
        if isinstance(vision_model_path, (tuple, list)):
            vision_config, vision_state = vision_model_path
            if any(name.startswith("embeddings.ln_pre.") for name in vision_state):
                config_kwargs.setdefault("vision_ln_pre", True)
        else:
            vision = ViTModel.from_pretrained(vision_model_path, add_pooling_layer=False)
            vision_config, vision_state = vision.config, vision.state_dict()
        bert = BertModel.from_pretrained(text_model_path, add_pooling_layer=False)
        depth = bert.config.num_hidden_layers
        fusion_depth = depth // 2 if num_fusion_layers is None else num_fusion_layers
        if not 0 < fusion_depth < depth:
            raise ValueError(f"num_fusion_layers must be in [1, {depth - 1}] for the {depth}-layer {text_model_path}")
        text_config = _bert_variant(bert.config, depth - fusion_depth)
        config = SarKnowlipConfig(
            vision_config=vision_config,
            text_config=text_config,
            cross_encoder_config=_bert_variant(bert.config, fusion_depth, **CROSS_ATTENTION),
            decoder_config=_bert_variant(bert.config, depth, **CROSS_ATTENTION),
            **config_kwargs,
        )
        model = cls(config)
        _load_vision(model.vision_model, vision_state)
        if vision_projection is not None:
            if tuple(vision_projection.shape) != tuple(model.vision_proj.weight.shape):
                raise ValueError(f"vision_projection has shape {tuple(vision_projection.shape)}, the ITC projection "
                                 f"{tuple(model.vision_proj.weight.shape)} (embed_dim x vision width)")
            with torch.no_grad():
                model.vision_proj.weight.copy_(vision_projection)
                model.vision_proj.bias.zero_()
        layers = bert.encoder.layer
        copied = [
            _load(model.text_encoder.embeddings, bert.embeddings),
            *(_load(model.text_encoder.encoder.layer[i], layers[i]) for i in range(depth - fusion_depth)),
            *(_load(model.fusion_encoder.encoder.layer[i], layers[depth - fusion_depth + i]) for i in range(fusion_depth)),
            _load(model.text_decoder.bert.embeddings, bert.embeddings),
            *(_load(model.text_decoder.bert.encoder.layer[i], layers[i]) for i in range(depth)),
        ]
        new_tensors = [name for missing in copied for name in missing]
        model.text_decoder.tie_weights()
        for online, momentum in model.momentum_pairs():
            momentum_update(online, momentum, 0.0)
        logger.info(
            "SAR-KnowLIP initialised from %s and %s; %d tensors of copied blocks are new (cross-attention)",
            vision_model_path, text_model_path, len(new_tensors),
        )
        return model


def _load_vision(target: ViTModel, state: dict[str, torch.Tensor]) -> None:
    """Load a ViT state dict; only `ln_pre` (config.vision_ln_pre, which a plain ViT lacks) may stay new."""
    result = target.load_state_dict(state, strict=False)
    missing = [name for name in result.missing_keys if not name.startswith("embeddings.ln_pre.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"vision checkpoint does not fit the ViT tower: missing {missing[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")


def _bert_variant(bert_config, num_hidden_layers: int, **changes):
    variant = copy.deepcopy(bert_config)
    variant.num_hidden_layers = num_hidden_layers
    for key, value in changes.items():
        setattr(variant, key, value)
    return variant


def _load(target: nn.Module, source: nn.Module) -> list[str]:
    """Copy `source`'s weights into `target`; returns target tensors the source lacks (cross-attention)."""
    result = target.load_state_dict(source.state_dict(), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"checkpoint block has tensors the SAR-KnowLIP block lacks: {result.unexpected_keys}")
    return result.missing_keys


class SarKnowlipForImageTextRetrieval(SarKnowlipModel):
    """Retrieval: fine-tune with `forward` (paper Table 5 uses ITC + ITM: set `mlm_weight=0`), rank with `retrieve`."""

    @torch.no_grad()
    def retrieve(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 k: int = 16, batch_size: int = 32) -> SarKnowlipRetrievalOutput:
        """Rank all texts for each image and all images for each text: ITC top-k, then ITM re-rank (ALBEF/BLIP).

        Keeps every image's token states in memory (N_images x tokens x D_v).
        """
        images = [self.encode_image(chunk) for chunk in pixel_values.split(batch_size)]
        image_embeds, image_feats = torch.cat([e for e, _ in images]), torch.cat([f for _, f in images])
        texts = [self.encode_text(ids, mask)
                 for ids, mask in zip(input_ids.split(batch_size), attention_mask.split(batch_size))]
        text_embeds, text_feats = torch.cat([e for e, _ in texts]), torch.cat([f for _, f in texts])
        similarity = image_feats @ text_feats.t()

        def rerank(candidates: torch.Tensor, image_index: torch.Tensor, text_index: torch.Tensor):
            scores = torch.cat([
                self.itm_logits(image_embeds[i], text_embeds[t], attention_mask[t])[:, 1]
                for i, t in zip(image_index.flatten().split(batch_size), text_index.flatten().split(batch_size))
            ]).view(candidates.shape)
            order = scores.argsort(dim=1, descending=True)
            return candidates.gather(1, order), scores.gather(1, order)

        i2t = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
        t2i = similarity.t().topk(min(k, similarity.shape[0]), dim=1).indices
        rows_i = torch.arange(similarity.shape[0], device=i2t.device)[:, None].expand_as(i2t)
        rows_t = torch.arange(similarity.shape[1], device=t2i.device)[:, None].expand_as(t2i)
        i2t_indices, i2t_scores = rerank(i2t, rows_i, i2t)
        t2i_indices, t2i_scores = rerank(t2i, t2i, rows_t)
        return SarKnowlipRetrievalOutput(
            itc_similarity=similarity, i2t_indices=i2t_indices, i2t_scores=i2t_scores,
            t2i_indices=t2i_indices, t2i_scores=t2i_scores,
        )


class SarKnowlipForConditionalGeneration(SarKnowlipModel):
    """Captioning. Fine-tuning (paper Table 5: ITC + ITM + MLM) masks the whole caption, so the decoder learns to
    write it from the image; `generate(pixel_values)` fills a context that is only [MASK]."""

    def default_mlm_mask(self, content: torch.Tensor, mlm_exclude_mask: torch.Tensor | None) -> torch.Tensor:
        if mlm_exclude_mask is not None:
            raise ValueError("captioning masks the whole caption; mlm_exclude_mask has no meaning here")
        return content

    @torch.no_grad()
    def generate(self, pixel_values: torch.Tensor | None = None, input_ids: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, image_embeds: torch.Tensor | None = None,
                 **generate_kwargs) -> torch.LongTensor:
        """Caption each image; `input_ids` may hold a context with one [MASK] (default: "[CLS] [MASK] [SEP]")."""
        if input_ids is None:
            batch_size = (pixel_values if image_embeds is None else image_embeds).shape[0]
            config = self.config
            device = self.temp.device
            input_ids = torch.tensor([[config.cls_token_id, config.mask_token_id, config.sep_token_id]], device=device)
            input_ids = input_ids.expand(batch_size, -1)
            attention_mask = torch.ones_like(input_ids)
        return super().generate(pixel_values, input_ids, attention_mask, image_embeds, **generate_kwargs)


class SarKnowlipForQuestionAnswering(SarKnowlipModel):
    """VQA by answer generation (paper Table 6, six task types in `config.vqa_task_types`).

    Text = "task type: question [SEP] answer" (built by `SarKnowlipProcessor(..., answers=...)`, which also returns
    `mlm_mask` marking the answer). Fine-tuning (Table 5: ITC + ITM + MLM) regenerates the answer; `generate` fills
    the [MASK] in "task type: question [SEP] [MASK]". A model fine-tuned with the grounding loss
    (`config.vqa_region_weight` > 0) also answers "target position" questions from its region scorer
    (`answer_regions`); `train.knowlip.evaluate.evaluate_vqa` does so.
    """

    def __init__(self, config: SarKnowlipConfig):
        super().__init__(config)
        # the grounding scorer exists only where its loss is on (config.vqa_region_weight > 0)
        self.region_head = nn.Linear(config.vision_config.hidden_size, 1) if config.vqa_region_weight > 0 else None
        self.post_init()  # initialises only what the parent's post_init has not: the scorer

    def default_mlm_mask(self, content: torch.Tensor, mlm_exclude_mask: torch.Tensor | None) -> torch.Tensor:
        raise ValueError("VQA fine-tuning needs mlm_mask marking the answer tokens; SarKnowlipProcessor returns it "
                         "when called with answers=...")

    def region_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, grid * grid) logits that each region of the `config.vqa_region_grid` grid (row by row from the top-left)
        holds a target, from the ViT's patch tokens (B, 1 + patches, D_v) max-pooled per region."""
        if self.region_head is None:
            raise ValueError("this model has no region scorer: load it with vqa_region_weight > 0")
        patches = image_embeds[:, 1:]
        side = math.isqrt(patches.shape[1])
        grid = patches.reshape(len(patches), side, side, -1).permute(0, 3, 1, 2)
        pooled = F.adaptive_max_pool2d(grid, self.config.vqa_region_grid).flatten(2).transpose(1, 2)
        return self.region_head(pooled).squeeze(-1)

    @torch.no_grad()
    def answer_regions(self, pixel_values: torch.Tensor | None = None,
                       image_embeds: torch.Tensor | None = None) -> list[str]:
        """Answers to "In which region(s) are the targets located?" from the region scorer: the regions whose logit is
        above 0, ascending and joined by ", " (the VQA sets' answer format, e.g. "1, 4"). Where no region is, the
        highest-scoring one (our choice: a position question presumes a target). The scorer finds every target, so
        a question about one class of several in the image is answered with the regions of all of them."""
        if image_embeds is None:
            image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state
        logits = self.region_logits(image_embeds)
        answers = []
        for row in logits:
            regions = (row > 0).nonzero().flatten().tolist() or [int(row.argmax())]
            answers.append(", ".join(str(region + 1) for region in regions))
        return answers

    def forward(self, *args, region_labels: torch.Tensor | None = None, **kwargs) -> SarKnowlipOutput:
        r"""`SarKnowlipModel.forward`, and with `return_loss` and `region_labels` the grounding loss
        (`config.vqa_region_weight`) added to `loss`.

        region_labels (`(B, grid * grid)` float, optional): 1 where a region holds a target, 0 where it holds none;
            a row of -1 marks an image without region labels (e.g. a centred chip), which adds no grounding loss.
        """
        out = super().forward(*args, **kwargs)
        if out.loss is None or region_labels is None or self.config.vqa_region_weight == 0:
            return out
        labelled = region_labels.ge(0).all(dim=1)
        if labelled.any():
            logits = self.region_logits(out.image_embeds[labelled])
            out.loss_region = F.binary_cross_entropy_with_logits(logits, region_labels[labelled].to(logits.dtype))
        else:  # keeps the scorer in the graph, so every process of a distributed run reduces the same gradients
            out.loss_region = self.region_head.weight.sum() * 0.0
        out.loss = out.loss + self.config.vqa_region_weight * out.loss_region
        return out


class SarKnowlipForImageClassification(SarKnowlipPreTrainedModel):
    """The ViT image encoder with a linear classifier on its [CLS] token (paper 4.3, fine-tuned from SAR-KnowLIP:
    `from_pretrained(knowlip_checkpoint, num_labels=..., id2label=...)` loads `vision_model.*`)."""

    def __init__(self, config: SarKnowlipConfig):
        super().__init__(config)
        self.vision_model = build_vision_model(config)
        self.classifier = nn.Linear(config.vision_config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> ImageClassifierOutput:
        logits = self.classifier(self.vision_model(pixel_values=pixel_values).last_hidden_state[:, 0])
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return ImageClassifierOutput(loss=loss, logits=logits)


__all__ = [
    "AUTO_CLASSES",
    "SarKnowlipPreTrainedModel",
    "SarKnowlipModel",
    "SarKnowlipForImageTextRetrieval",
    "SarKnowlipForConditionalGeneration",
    "SarKnowlipForQuestionAnswering",
    "SarKnowlipForImageClassification",
    "SarKnowlipFusionEncoder",
    "SarKnowlipOutput",
    "SarKnowlipPairScores",
    "SarKnowlipRetrievalOutput",
]
