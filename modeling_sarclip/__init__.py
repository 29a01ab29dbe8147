"""SARCLIP on the Hugging Face stack: `from modeling_sarclip import SarclipConfig, SarclipModel, SarclipProcessor`.

Importing the package registers the classes with transformers' Auto classes; `save_pretrained` also writes the code
next to the weights so that a fresh environment loads them with `trust_remote_code=True`. Internals (the loss in
`loss_sarclip`, the SAR raster reader and radiometry, text cleaning) are importable by module path.
"""

from sar_utils import __version__

import transformers

from .configuration_sarclip import OPEN_CLIP_PRESETS, SarclipConfig, SarclipTextConfig, SarclipVisionConfig
from .image_processing_sarclip import SarclipImageProcessor, pixel_statistics
from .modeling_sarclip import SarclipModel, SarclipOutput, SarclipPreTrainedModel
from .pipeline_sarclip import SAR_ZERO_SHOT_TASK, SarZeroShotImageClassificationPipeline
from .processing_sarclip import SarclipProcessor
from .tokenization_sarclip import SarclipTokenizer, train_sarclip_tokenizer

transformers.AutoConfig.register(SarclipConfig.model_type, SarclipConfig, exist_ok=True)
transformers.AutoImageProcessor.register(SarclipConfig, slow_image_processor_class=SarclipImageProcessor,
                                         exist_ok=True)
transformers.AutoTokenizer.register(SarclipConfig, fast_tokenizer_class=SarclipTokenizer, exist_ok=True)
transformers.AutoProcessor.register(SarclipConfig, SarclipProcessor, exist_ok=True)
SarclipConfig.register_for_auto_class()
SarclipImageProcessor.register_for_auto_class("AutoImageProcessor")
SarclipTokenizer.register_for_auto_class("AutoTokenizer")
SarclipProcessor.register_for_auto_class("AutoProcessor")
# one model class for both Auto classes, as transformers does for CLIPModel (save_pretrained lists both in auto_map)
for _auto_class in ("AutoModel", "AutoModelForZeroShotImageClassification"):
    getattr(transformers, _auto_class).register(SarclipConfig, SarclipModel, exist_ok=True)
    SarclipModel.register_for_auto_class(_auto_class)

__all__ = [
    "__version__",
    "OPEN_CLIP_PRESETS", "SarclipConfig", "SarclipImageProcessor", "SarclipModel", "SarclipOutput",
    "SarclipPreTrainedModel", "SarclipProcessor", "SarclipTextConfig", "SarclipTokenizer", "SarclipVisionConfig",
    "SAR_ZERO_SHOT_TASK", "SarZeroShotImageClassificationPipeline",
    "pixel_statistics", "train_sarclip_tokenizer",
]
