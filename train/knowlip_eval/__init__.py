"""Model-agnostic SAR-KnowLIP evaluation (paper 4.4, Table 6): retrieval recalls from a similarity matrix, COCO
caption metrics, and VQA accuracy per task type."""

from .captioning import caption_metrics
from .retrieval import RECALL_KS, retrieval_recalls
from .vqa import VqaAccuracy, normalize_answer, vqa_accuracy

__all__ = ["RECALL_KS", "VqaAccuracy", "caption_metrics", "normalize_answer", "retrieval_recalls", "vqa_accuracy"]
