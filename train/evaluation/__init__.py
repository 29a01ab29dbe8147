"""SARCLIP evaluation: retrieval (R@K, mean recall), zero-shot prompt classification, linear probe, WiSE-FT,
SARVLM-style ensembles and t-SNE feature plots. Metrics are local `evaluate` modules (train/evaluation/metrics/).

    from train.evaluation import run_evaluation
    metrics = run_evaluation(model, processor, dataset_dict, class_names, "out/eval")
"""

from .encode import cached_image_features, encode_images, encode_texts
from .ensemble import SarclipEnsemble
from .feature_plot import save_tsne_plot
from .linear_probe import evaluate_linear_probe, train_linear_probe
from .metrics import load_metric
from .retrieval import retrieval_recalls, table_iii_row
from .run import TASKS, run_evaluation
from .wise_ft import evaluate_wise_ft, interpolate_weights
from .zero_shot import class_embeddings, evaluate_zero_shot, load_template_set

__all__ = [
    "SarclipEnsemble", "TASKS", "cached_image_features", "class_embeddings", "encode_images", "encode_texts",
    "evaluate_linear_probe", "evaluate_wise_ft", "evaluate_zero_shot", "interpolate_weights", "load_metric",
    "load_template_set", "retrieval_recalls", "run_evaluation", "save_tsne_plot", "table_iii_row",
    "train_linear_probe",
]
