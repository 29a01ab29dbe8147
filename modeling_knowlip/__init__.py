"""SAR-KnowLIP on the Hugging Face stack: `from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, ...`.

Importing the package registers the classes with transformers' Auto classes; `save_pretrained` also writes the code
(this flat folder's files) next to the weights, so a fresh environment loads them with `trust_remote_code=True`.
Internals (losses, masking, the feature queue) are importable by module path.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForImageTextToText,
    AutoModelForVisualQuestionAnswering,
    AutoProcessor,
)

from .configuration_knowlip import PRESETS, VQA_TASK_TYPES, SarKnowlipConfig
from .modeling_knowlip import (
    SarKnowlipForConditionalGeneration,
    SarKnowlipForImageClassification,
    SarKnowlipForImageTextRetrieval,
    SarKnowlipForQuestionAnswering,
    SarKnowlipModel,
    SarKnowlipOutput,
    SarKnowlipPreTrainedModel,
)
from .processing_knowlip import SarKnowlipProcessor
from .tokenization_knowlip import train_wordpiece_tokenizer

AutoConfig.register(SarKnowlipConfig.model_type, SarKnowlipConfig, exist_ok=True)
AutoModel.register(SarKnowlipConfig, SarKnowlipModel, exist_ok=True)
AutoModelForImageTextToText.register(SarKnowlipConfig, SarKnowlipForConditionalGeneration, exist_ok=True)
AutoModelForVisualQuestionAnswering.register(SarKnowlipConfig, SarKnowlipForQuestionAnswering, exist_ok=True)
AutoModelForImageClassification.register(SarKnowlipConfig, SarKnowlipForImageClassification, exist_ok=True)
AutoProcessor.register(SarKnowlipConfig, SarKnowlipProcessor, exist_ok=True)

SarKnowlipConfig.register_for_auto_class()
SarKnowlipModel.register_for_auto_class("AutoModel")
SarKnowlipForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
SarKnowlipForQuestionAnswering.register_for_auto_class("AutoModelForVisualQuestionAnswering")
SarKnowlipForImageClassification.register_for_auto_class("AutoModelForImageClassification")
SarKnowlipProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "PRESETS",
    "VQA_TASK_TYPES",
    "SarKnowlipConfig",
    "SarKnowlipForConditionalGeneration",
    "SarKnowlipForImageClassification",
    "SarKnowlipForImageTextRetrieval",
    "SarKnowlipForQuestionAnswering",
    "SarKnowlipModel",
    "SarKnowlipOutput",
    "SarKnowlipPreTrainedModel",
    "SarKnowlipProcessor",
    "train_wordpiece_tokenizer",
]
