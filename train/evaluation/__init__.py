"""One evaluation home for both model families: retrieval recall (one function over a score matrix, one key scheme,
one tie rule), zero-shot prompt classification, linear probe, WiSE-FT, ensembles, t-SNE plots, captioning metrics
and VQA accuracy. Classification metrics are local `evaluate` modules (train/evaluation/metrics/).

    from train.evaluation import run_evaluation
    metrics = run_evaluation(model, processor, dataset_dict, class_names, "out/eval")
"""

from .captioning import caption_metrics
from .dataset_eval import evaluate_model
from .encode import encode_images, encode_texts
from .ensemble import SarclipEnsemble
from .linear_probe import evaluate_linear_probe
from .retrieval import retrieval_recalls
from .run import run_evaluation
from .vqa import vqa_accuracy
from .wise_ft import evaluate_wise_ft
from .zero_shot import evaluate_zero_shot

__all__ = [
    "SarclipEnsemble", "caption_metrics", "encode_images", "encode_texts", "evaluate_linear_probe", "evaluate_model",
    "evaluate_wise_ft", "evaluate_zero_shot", "retrieval_recalls", "run_evaluation", "vqa_accuracy",
]
