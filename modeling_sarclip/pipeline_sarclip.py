"""`sar-zero-shot-image-classification`: transformers' zero-shot image pipeline for everything the SAR image processor
reads. The standard pipeline opens a file with PIL and converts it to 8-bit RGB, which destroys float dB, dual-pol,
16-bit and complex rasters and refuses arrays; this one hands file paths and numpy arrays to `SarclipImageProcessor`
as they are (URLs, base64 strings and PIL images go the standard way).

    from transformers import pipeline
    classifier = pipeline("sar-zero-shot-image-classification", model=folder, trust_remote_code=True)
    classifier("scene_vv_vh_db.tif", candidate_labels=["ship", "oil platform"], hypothesis_template="a SAR image of {}.")

Importing `modeling_sarclip` registers the task; `SarclipModel.save_pretrained` writes it (`custom_pipelines`) and this
file into the model folder, so a fresh environment loads it with `trust_remote_code=True`.
"""

import os
from pathlib import Path

import numpy as np
from transformers.pipelines import ZeroShotImageClassificationPipeline

SAR_ZERO_SHOT_TASK = "sar-zero-shot-image-classification"


class SarZeroShotImageClassificationPipeline(ZeroShotImageClassificationPipeline):
    def preprocess(self, image, candidate_labels=None, hypothesis_template="This is a photo of {}.", timeout=None,
                   tokenizer_kwargs=None):
        if not (isinstance(image, np.ndarray) or (isinstance(image, (str, Path)) and os.path.isfile(image))):
            return super().preprocess(image, candidate_labels, hypothesis_template, timeout, tokenizer_kwargs)
        # as the standard preprocess, minus `load_image` (which would read the raster as 8-bit RGB)
        inputs = self.image_processor(images=[image], return_tensors="pt").to(self.dtype)
        inputs["candidate_labels"] = candidate_labels
        texts = [hypothesis_template.format(label) for label in candidate_labels]
        inputs["text_inputs"] = [self.tokenizer(texts, return_tensors="pt", padding=True, **(tokenizer_kwargs or {}))]
        return inputs


__all__ = ["SAR_ZERO_SHOT_TASK", "SarZeroShotImageClassificationPipeline"]
