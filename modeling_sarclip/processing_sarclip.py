"""SARCLIP processor: SAR image processor + CLIP BPE tokenizer in one object."""

from transformers import ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature


class SarclipProcessor(ProcessorMixin):
    """Prepares `pixel_values` (see `SarclipImageProcessor`) and `input_ids` (see `SarclipTokenizer`).

    Text defaults: padded with 0 to the batch's longest text and truncated to the tokenizer's `model_max_length`
    (77), the end-of-text token kept. SAR captions are 10-25 tokens, so this is 3-7x less text-tower work than
    open_clip's fixed 77 tokens, with the same embeddings (causal attention, end-of-text pooling).
    `padding="max_length"` gives `open_clip.tokenize()`'s layout; the tokenizer's `padding`, `truncation`,
    `max_length` and `return_tensors` arguments pass through; the image processor's `margin` and `standardize`
    (random-crop augmentation: a wider centre square, standardised after the crop) too.
    """

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer)

    def __call__(self, images=None, text=None, return_tensors="pt", padding=True, truncation=True, margin: int = 0,
                 standardize: bool = True, **kwargs):
        if images is None and text is None:
            raise ValueError("SarclipProcessor needs `images`, `text` or both")
        data = {}
        if text is not None:
            data.update(self.tokenizer(text, padding=padding, truncation=truncation, return_tensors=return_tensors,
                                       **kwargs))
        if images is not None:
            data.update(self.image_processor(images, return_tensors=return_tensors, margin=margin,
                                             standardize=standardize))
        return BatchFeature(data=data, tensor_type=return_tensors)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values"]


__all__ = ["SarclipProcessor"]
