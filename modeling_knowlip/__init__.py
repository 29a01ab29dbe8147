"""SAR-KnowLIP on the Hugging Face stack: `from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, ...`.

Importing the package registers the classes with transformers' Auto classes; `save_pretrained` also writes the code
(this flat folder's files) next to the weights, so a fresh environment loads them with `trust_remote_code=True`.
Internals (losses, masking, the feature queue) are importable by module path.
"""

from sar_utils import __version__

import transformers

# the processor's image half is SarclipImageProcessor, which loads through AutoImageProcessor: importing the SARCLIP
# package registers it, so `SarKnowlipProcessor.from_pretrained(folder)` needs no trust_remote_code
import modeling_sarclip  # noqa: F401

from .configuration_knowlip import PRESETS, VQA_TASK_TYPES, SarKnowlipConfig
from . import modeling_knowlip as _modeling
from .modeling_knowlip import (
    AUTO_CLASSES,
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

transformers.AutoConfig.register(SarKnowlipConfig.model_type, SarKnowlipConfig, exist_ok=True)
transformers.AutoProcessor.register(SarKnowlipConfig, SarKnowlipProcessor, exist_ok=True)
SarKnowlipConfig.register_for_auto_class()
SarKnowlipProcessor.register_for_auto_class("AutoProcessor")
# each task class under the transformers Auto class of its task (every saved folder's auto_map lists them all)
for _auto_class, _class_name in AUTO_CLASSES.items():
    _model_class = getattr(_modeling, _class_name)
    getattr(transformers, _auto_class).register(SarKnowlipConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_class)

__all__ = [
    "__version__",
    "PRESETS", "VQA_TASK_TYPES", "SarKnowlipConfig", "SarKnowlipForConditionalGeneration",
    "SarKnowlipForImageClassification", "SarKnowlipForImageTextRetrieval", "SarKnowlipForQuestionAnswering",
    "SarKnowlipModel", "SarKnowlipOutput", "SarKnowlipPreTrainedModel", "SarKnowlipProcessor",
    "train_wordpiece_tokenizer",
]
