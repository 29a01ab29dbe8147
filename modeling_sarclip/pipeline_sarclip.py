"""SAR-aware zero-shot image classification: transformers' zero-shot image pipeline for everything the SAR image
processor reads. The standard pipeline opens a file with PIL and converts it to 8-bit RGB, which destroys float dB,
dual-pol, 16-bit and complex rasters and refuses arrays; this one hands file paths and numpy arrays to
`SarclipImageProcessor` as they are (URLs, base64 strings and PIL images, and every model without the SAR image
processor, go the standard way).

    from transformers import pipeline
    classifier = pipeline("zero-shot-image-classification", model=folder, trust_remote_code=True)
    classifier("scene_vv_vh_db.tif", candidate_labels=["ship", "oil platform"], hypothesis_template="a SAR image of {}.")

`register_sar_pipelines` (run when `configuration_sarclip` is imported: by `import modeling_sarclip`, and by
`trust_remote_code` loading, whose first step reads the config) serves the standard task name with this class and
registers `sar-zero-shot-image-classification` as an alias. transformers' `custom_pipelines` cannot do the first: a
standard task named there requires `trust_remote_code=True` even where the classes are installed. `SarclipModel.
save_pretrained` writes this file into the model folder.
"""

import os
from pathlib import Path

import numpy as np
from transformers.pipelines import ZeroShotImageClassificationPipeline

SAR_ZERO_SHOT_TASK = "sar-zero-shot-image-classification"
STANDARD_TASK = "zero-shot-image-classification"


class SarZeroShotImageClassificationPipeline(ZeroShotImageClassificationPipeline):
    def preprocess(self, image, candidate_labels=None, hypothesis_template="This is a photo of {}.", timeout=None,
                   tokenizer_kwargs=None):
        sar_processor = type(self.image_processor).__name__ == "SarclipImageProcessor"
        if not sar_processor or not (isinstance(image, np.ndarray)
                                     or (isinstance(image, (str, Path)) and os.path.isfile(image))):
            return super().preprocess(image, candidate_labels, hypothesis_template, timeout, tokenizer_kwargs)
        # as the standard preprocess, minus `load_image` (which would read the raster as 8-bit RGB)
        inputs = self.image_processor(images=[image], return_tensors="pt").to(self.dtype)
        inputs["candidate_labels"] = candidate_labels
        texts = [hypothesis_template.format(label) for label in candidate_labels]
        inputs["text_inputs"] = [self.tokenizer(texts, return_tensors="pt", padding=True, **(tokenizer_kwargs or {}))]
        return inputs


def register_sar_pipelines() -> None:
    """Serve the standard zero-shot task with `SarZeroShotImageClassificationPipeline` (its model classes and default
    kept) and register the SAR task name as an alias."""
    from transformers import AutoModelForZeroShotImageClassification
    from transformers.pipelines import PIPELINE_REGISTRY

    standard = PIPELINE_REGISTRY.supported_tasks[STANDARD_TASK]
    PIPELINE_REGISTRY.supported_tasks[STANDARD_TASK] = {**standard, "impl": SarZeroShotImageClassificationPipeline}
    PIPELINE_REGISTRY.supported_tasks[SAR_ZERO_SHOT_TASK] = {
        "impl": SarZeroShotImageClassificationPipeline, "pt": (AutoModelForZeroShotImageClassification,),
        "type": "multimodal"}


__all__ = ["SAR_ZERO_SHOT_TASK", "STANDARD_TASK", "SarZeroShotImageClassificationPipeline", "register_sar_pipelines"]
