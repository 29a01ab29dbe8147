"""`evaluate_knowlip`: SAR-KnowLIP's downstream evaluation (paper 4.4, Table 6) on image-text data and a VQA set.

- retrieval: ITC similarities of all images x all texts, the ITC top-k of each image (text) re-ranked by the ITM match
  logit (`SarKnowlipForImageTextRetrieval.retrieve`), Recall@1/5/10 both ways (`train.evaluation.retrieval`, the
  function and keys SARCLIP's evaluation uses; identical texts are one text whose images are all correct);
- captioning: one generated caption per image against its reference texts (BLEU-4, METEOR, ROUGE-L, CIDEr);
- vqa: generated answers to "task type: question [SEP] [MASK]" (position questions answered by the region scorer
  when the model has one), accuracy per task type.

Image-text data has an `image` column and, per image, reference texts from the first of these columns present:
`captions` (a list of captions; each is a retrieval text), `caption` (one string) or `subtexts` (the 8 sub-texts of
a SCIO dataset, joined with spaces into one text, as the SCIO texts are). VQA data has the columns `image`,
`question`, `answer`, `task_type` (`dataset_scripts.geovl.vqa_sets`; a folder's `images` split is joined in).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import datasets
import torch

from modeling_knowlip import (
    SarKnowlipConfig,
    SarKnowlipForConditionalGeneration,
    SarKnowlipForImageTextRetrieval,
    SarKnowlipForQuestionAnswering,
    SarKnowlipModel,
    SarKnowlipProcessor,
)
from dataset_scripts.geovl.vqa_sets import TASK_POSITION, load_vqa_sets
from dataset_scripts.loading import load_image_text_data
from modeling_knowlip.configuration_knowlip import VQA_TASK_TYPES

from sar_utils.atomic import write_json

from ..evaluation.captioning import caption_metrics
from ..evaluation.retrieval import retrieval_recalls, unique_captions
from ..evaluation.vqa import set_match, vqa_accuracy

from .synthetic_texts import synthetic_scio_dataset

TASKS = ("retrieval", "captioning", "vqa", "zero_shot", "linear_probe")
CLASSIFICATION_TASKS = ("zero_shot", "linear_probe")  # SARCLIP's evaluation (train.evaluation), the same keys
RESULTS_FILE = "eval_results.json"
CAPTIONS_FILE = "captions.jsonl"
VQA_ANSWERS_FILE = "vqa_answers.jsonl"
# BLIP's decoding settings (its caption_coco.yaml / vqa.yaml; the paper gives none): beam search of 3; captions of
# 5 to 20 tokens, answers of 1 to 10.
CAPTION_GENERATION = {"num_beams": 3, "min_new_tokens": 5, "max_new_tokens": 20}
VQA_GENERATION = {"num_beams": 3, "min_new_tokens": 1, "max_new_tokens": 10}


def evaluate_knowlip(
    model: str | Path | SarKnowlipModel,
    processor: SarKnowlipProcessor | None,
    tasks: Sequence[str],
    out_dir: str | Path,
    data: datasets.Dataset | str | Path | None = None,
    vqa_data: datasets.Dataset | str | Path | None = None,
    batch_size: int = 32,
    k: int = 16,
    allow_outside_data: bool = False,
) -> dict:
    """Run the `tasks` (some of "retrieval", "captioning", "vqa", "zero_shot", "linear_probe") and write
    `out_dir/eval_results.json`.

    model: a folder saved with `save_pretrained` or a loaded SAR-KnowLIP model (any of its task classes; the weights
    are the same). processor: None loads it from the model folder. data (retrieval, captioning): a `datasets.Dataset`,
    a `load_dataset` folder (split "test") or "synthetic" (16 synthetic chips with template sub-texts). vqa_data: a
    `datasets.Dataset` or a folder written by `python -m dataset_scripts.geovl vqa`. k: the ITC candidates per
    query that ITM re-ranks. allow_outside_data: let a `data` table or image folder name images outside its folder
    (`dataset_scripts.loading`). Returns the results dict that the JSON file holds; generated captions and answers go to
    `captions.jsonl` and `vqa_answers.jsonl` beside it. zero_shot and linear_probe run SARCLIP's evaluation
    (`train.evaluation.dataset_eval.evaluate_model` on `get_image_features` / `get_text_features`, the same prompts and
    result keys, so the two families' numbers compare) on `data` as `python -m train eval` loads it: a labelled
    dataset folder, image folder or table (its `test` split, or the held-out split; the linear probe fits on `train`).
    """
    if unknown := sorted(set(tasks) - set(TASKS)):
        raise ValueError(f"unknown evaluation tasks {unknown}; choose from {list(TASKS)}")
    if not tasks:
        raise ValueError(f"no evaluation task given; choose from {list(TASKS)}")
    if {"retrieval", "captioning"} & set(tasks) and data is None:
        raise ValueError("retrieval and captioning need `data` (an image-text dataset, folder or 'synthetic')")
    if set(CLASSIFICATION_TASKS) & set(tasks) and not isinstance(data, (str, Path)):
        raise ValueError("zero_shot and linear_probe need `data`: a labelled dataset folder, image folder or table")
    if "vqa" in tasks and vqa_data is None:
        raise ValueError("vqa needs `vqa_data` (a VQA dataset or folder)")
    if processor is None:
        if not isinstance(model, (str, Path)):
            raise ValueError("give the processor of an in-memory model")
        processor = SarKnowlipProcessor.from_pretrained(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    if {"retrieval", "captioning"} & set(tasks):
        config = SarKnowlipConfig.from_pretrained(model) if isinstance(model, (str, Path)) else model.config
        image_size = config.vision_config.image_size
        images, texts = load_image_texts(data, image_size, allow_outside_data)
    if "retrieval" in tasks:
        results["retrieval"] = evaluate_retrieval(
            _task_model(model, SarKnowlipForImageTextRetrieval), processor, images, texts, k, batch_size)
    if "captioning" in tasks:
        results["captioning"], captions = evaluate_captioning(
            _task_model(model, SarKnowlipForConditionalGeneration), processor, images, texts, batch_size)
        _write_jsonl(out_dir / CAPTIONS_FILE, [{"prediction": p, "references": r} for p, r in zip(captions, texts)])
    if "vqa" in tasks:
        vqa = load_vqa_data(vqa_data)
        results["vqa"], answers = evaluate_vqa(
            _task_model(model, SarKnowlipForQuestionAnswering), processor, vqa, batch_size)
        _write_jsonl(out_dir / VQA_ANSWERS_FILE, [
            {"question": q, "task_type": t, "answer": a, "prediction": p}
            for q, t, a, p in zip(vqa["question"], vqa["task_type"], vqa["answer"], answers)
        ])
    if classification := [task for task in CLASSIFICATION_TASKS if task in tasks]:
        from ..evaluation.dataset_eval import evaluate_model
        from ..sarclip.config import TrainConfig
        from ..sarclip.data import load_image_text_dataset

        encoder = SarKnowlipModel.from_pretrained(model) if isinstance(model, (str, Path)) else model
        dataset = load_image_text_dataset(TrainConfig(data=str(data), allow_outside_data=allow_outside_data))
        results.update(evaluate_model(encoder.eval(), processor, dataset, "train", "test", classification, out_dir,
                                      batch_size))
    write_json(out_dir / RESULTS_FILE, results, indent=2)
    return results


def load_image_texts(data: datasets.Dataset | str | Path, image_size: int,
                     allow_outside_data: bool = False) -> tuple[list, list[list[str]]]:
    """The images and, per image, its reference texts (see the module docstring for the columns)."""
    if isinstance(data, (str, Path)):
        data = _load_split(data, lambda: datasets.DatasetDict(
            {"test": synthetic_scio_dataset(num_images=16, image_size=image_size, seed=0)}), allow_outside_data)
    if "image" not in data.column_names:
        raise ValueError(f"image-text data has no `image` column (columns: {data.column_names})")
    if "captions" in data.column_names:
        texts = [list(captions) for captions in data["captions"]]
    elif "caption" in data.column_names:
        texts = [[caption] for caption in data["caption"]]
    elif "subtexts" in data.column_names:
        texts = [[" ".join(subtexts)] for subtexts in data["subtexts"]]
    else:
        raise ValueError(f"image-text data needs a `captions`, `caption` or `subtexts` column (columns: "
                         f"{data.column_names})")
    if empty := [i for i, refs in enumerate(texts) if not any(t.strip() for t in refs)]:
        raise ValueError(f"images {empty[:10]} have no reference text ({len(empty)} in all)")
    return list(data["image"]), texts


def load_vqa_data(vqa_data: datasets.Dataset | str | Path, split: str = "test") -> datasets.Dataset:
    """A VQA dataset, or split `split` of a `python -m dataset_scripts.geovl vqa` folder with its images joined."""
    source = f"{vqa_data}: " if isinstance(vqa_data, (str, Path)) else ""
    if isinstance(vqa_data, (str, Path)):
        if not Path(vqa_data).is_dir():
            raise FileNotFoundError(f"{vqa_data}: no VQA folder (write one with `python -m dataset_scripts.geovl vqa`)")
        splits = load_vqa_sets(vqa_data)
        if split not in splits:
            raise ValueError(f"{vqa_data}: no `{split}` split (splits: {list(splits)})")
        vqa_data = splits[split]
    if missing := sorted({"image", "question", "answer", "task_type"} - set(vqa_data.column_names)):
        raise ValueError(f"{source}VQA data lacks the columns {missing} (columns: {vqa_data.column_names}); build a "
                         "VQA folder with `python -m dataset_scripts.geovl vqa`")
    return vqa_data


def rerank_score_matrix(itc_similarity: torch.Tensor, indices: torch.Tensor, itm_scores: torch.Tensor) -> torch.Tensor:
    """Final (queries x candidates) scores: each query's re-ranked candidates (`indices`, with their ITM logits
    `itm_scores`) in ITM order above all its other candidates, which keep their ITC order.

    BLIP fills the non-candidates with -100 (ties); keeping their ITC order (our choice) gives the same Recall@K for
    K <= k and a full ranking otherwise, so with k = 1 the ranking is exactly the ITC one. Candidates are scored by
    the ITM logit alone (as `retrieve` ranks them, after ALBEF; BLIP adds the ITC similarity).
    """
    scores = itc_similarity.clone().float()
    # cosine similarities are in [-1, 1]: shift the ITM logits of each query's candidates to start at 2
    lifted = itm_scores.float() - itm_scores.float().min(dim=1, keepdim=True).values + 2.0
    return scores.scatter_(1, indices, lifted)


def evaluate_retrieval(model: SarKnowlipModel, processor: SarKnowlipProcessor, images: list,
                       texts: list[list[str]], k: int, batch_size: int) -> dict:
    """Recall@1/5/10 both ways and their mean, after ITM re-ranking (`itm`, the reported numbers) and from ITC
    alone (`itc`). Identical texts are encoded once and count as one text carrying all their images."""
    model = _task_model(model, SarKnowlipForImageTextRetrieval)
    distinct, owners = unique_captions(texts)
    max_length = model.config.text_config.max_position_embeddings
    pixel_values = _pixel_values(processor, images, batch_size)
    encoded = processor(text=distinct, max_length=max_length)
    ranked = model.retrieve(pixel_values, encoded["input_ids"], encoded["attention_mask"], k=k, batch_size=batch_size)
    # each direction's candidates are re-ranked by ITM separately: the image -> text recalls come from the images'
    # re-ranked lists, the text -> image ones from the texts'
    itm = retrieval_recalls(
        rerank_score_matrix(ranked.itc_similarity, ranked.i2t_indices, ranked.i2t_scores), owners,
        text_to_image_scores=rerank_score_matrix(ranked.itc_similarity.t(), ranked.t2i_indices, ranked.t2i_scores))
    return {"itm": itm, "itc": retrieval_recalls(ranked.itc_similarity, owners), "k": k}


def evaluate_captioning(model: SarKnowlipModel, processor: SarKnowlipProcessor, images: list,
                        references: list[list[str]], batch_size: int) -> tuple[dict, list[str]]:
    """Caption metrics (x 100) of one generated caption per image, and the captions."""
    model = _task_model(model, SarKnowlipForConditionalGeneration)
    captions = []
    for start in range(0, len(images), batch_size):
        pixel_values = processor(images=images[start:start + batch_size])["pixel_values"]
        ids = model.generate(pixel_values, suppress_tokens=_unwritable_tokens(processor), **CAPTION_GENERATION)
        captions += processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return {**caption_metrics(captions, references), "images": len(images)}, captions


def evaluate_vqa(model: SarKnowlipModel, processor: SarKnowlipProcessor,
                 vqa: datasets.Dataset, batch_size: int) -> tuple[dict, list[str]]:
    """Accuracy per task type (x 100, `train.evaluation.vqa.vqa_accuracy`) of the model's answers, and the answers.
    Answers are generated, except that a model with a region scorer answers position questions from it
    (`SarKnowlipForQuestionAnswering.answer_regions`); `position_answers` names which answered them."""
    model = _task_model(model, SarKnowlipForQuestionAnswering)
    grounded = model.region_head is not None
    answers = [""] * len(vqa)
    by_scorer = [i for i, task in enumerate(vqa["task_type"]) if grounded and task == TASK_POSITION]
    by_decoder = sorted(set(range(len(vqa))) - set(by_scorer))
    max_length = model.config.text_config.max_position_embeddings
    for start in range(0, len(by_decoder), batch_size):
        rows = by_decoder[start:start + batch_size]
        batch = vqa[rows]
        inputs = processor.vqa_inputs(batch["question"], batch["task_type"], images=batch["image"],
                                      max_length=max_length)
        ids = model.generate(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"],
                             suppress_tokens=_unwritable_tokens(processor), **VQA_GENERATION)
        for row, answer in zip(rows, processor.tokenizer.batch_decode(ids, skip_special_tokens=True)):
            answers[row] = answer
    for start in range(0, len(by_scorer), batch_size):
        rows = by_scorer[start:start + batch_size]
        pixel_values = processor.image_processor(vqa[rows]["image"], return_tensors="pt")["pixel_values"]
        for row, answer in zip(rows, model.answer_regions(pixel_values.to(model.device))):
            answers[row] = answer
    accuracy = vqa_accuracy(answers, vqa["answer"], vqa["task_type"], task_order=VQA_TASK_TYPES)
    return {**dataclasses.asdict(accuracy),
            "position_answers": "region scorer" if grounded else "answer decoder"}, answers


@torch.no_grad()
def evaluate_region_scorer(model: SarKnowlipForQuestionAnswering, processor: SarKnowlipProcessor,
                           vqa: datasets.Dataset, regions: dict[str, set[int]], batch_size: int = 32) -> dict:
    """How well a VQA model's grounding scorer (`region_logits`) finds targets on the detection images of `vqa`: its
    regions (probability > 0.5) against each image's `regions` (`target_regions` of the whole split), as the share
    of images with every region right (the exact-match rule of a position answer) and the micro F1 over regions,
    in percent (`train.evaluation.vqa.set_match`)."""
    first_row = {image_id: row for row, image_id in reversed(list(enumerate(vqa["image_id"])))}
    image_ids = [image_id for image_id in regions if image_id in first_row]
    if not image_ids:
        return {"exact": None, "region_f1": None, "images": 0}
    device, predicted = next(model.parameters()).device, []
    for start in range(0, len(image_ids), batch_size):
        rows = [first_row[i] for i in image_ids[start:start + batch_size]]
        pixels = processor.image_processor(vqa[rows]["image"], return_tensors="pt")["pixel_values"].to(device)
        logits = model.region_logits(model.vision_model(pixel_values=pixels).last_hidden_state)
        predicted += [frozenset((row.nonzero().flatten() + 1).tolist()) for row in logits.gt(0).cpu()]
    exact, f1 = set_match(predicted, [frozenset(regions[i]) for i in image_ids])
    return {"exact": exact, "region_f1": f1, "images": len(image_ids)}


def _unwritable_tokens(processor: SarKnowlipProcessor) -> list[int]:
    """Special tokens other than [SEP] (which ends the text): decoding would drop them, so a caption of only
    [UNK] / [MASK] would be empty (our choice: never generate them)."""
    tokenizer = processor.tokenizer
    return sorted({tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id})


def _pixel_values(processor: SarKnowlipProcessor, images: list, batch_size: int) -> torch.Tensor:
    return torch.cat([processor(images=images[start:start + batch_size])["pixel_values"]
                      for start in range(0, len(images), batch_size)])


def _task_model(model: str | Path | SarKnowlipModel, task_class: type[SarKnowlipModel]) -> SarKnowlipModel:
    """The model as `task_class` (the task classes share all weights and differ only in methods), in eval mode."""
    if isinstance(model, (str, Path)):
        if not Path(model).is_dir():
            raise FileNotFoundError(f"{model}: no such model folder")
        loaded = task_class.from_pretrained(model)
    elif isinstance(model, task_class):
        loaded = model
    else:
        loaded = task_class(model.config).to(model.device)
        loaded.load_state_dict(model.state_dict())
    return loaded.eval()


def _load_split(data: str | Path, synthetic=None, allow_outside_data: bool = False) -> datasets.Dataset:
    """The `test` split of `data` (`dataset_scripts.loading.load_image_text_data`)."""
    loaded = load_image_text_data(str(data), synthetic, allow_outside_data=allow_outside_data)
    if "test" not in loaded:
        raise ValueError(f"{data}: no `test` split (splits: {list(loaded)})")
    return loaded["test"]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


__all__ = [
    "TASKS",
    "evaluate_captioning",
    "evaluate_knowlip",
    "evaluate_retrieval",
    "evaluate_vqa",
    "load_image_texts",
    "load_vqa_data",
    "rerank_score_matrix",
]
