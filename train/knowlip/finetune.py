"""Downstream fine-tuning of SAR-KnowLIP with evaluation (paper 4.3-4.4, Tables 3 and 5), one command per task:

    python -m train.knowlip finetune --task classification --model MODEL_DIR --data DATA [--lora]
    python -m train.knowlip finetune --task retrieval|captioning --model MODEL_DIR --data DATA
    python -m train.knowlip finetune --task vqa --model MODEL_DIR --data VQA_DIR

- classification: `SarKnowlipForImageClassification` (the ViT with a linear head on [CLS]) on a labelled dataset;
  full fine-tuning or LoRA on the ViT (the head always trains; the saved model has the adapters merged). Test top-1 /
  top-3 / mean class accuracy from the `sar_classification` metric SARCLIP's evaluation uses (keys `finetune/...`).
- retrieval: ITC + ITM (Table 5; `mlm_weight=0`), every caption of an image is a training pair and the image's
  captions are each other's positives (`image_ids`); test Recall@1/5/10 after ITM re-ranking, SARCLIP's keys.
- captioning: ITC + ITM + LM on the whole caption (Table 5); test BLEU / METEOR / ROUGE-L / CIDEr.
- vqa: ITC + ITM + LM on the answer of "task type: question [SEP] answer" (Table 5) on the `train` split of a
  `python -m dataset_scripts.geovl vqa` folder; test accuracy (and answer-item F1) per task type beside the
  majority-answer prior. `--region_loss_weight W` adds a grounding loss that teaches the ViT which grid regions hold a
  target (`SarKnowlipConfig.vqa_region_weight`; our addition, off by default).
The evaluation is `train.knowlip.evaluate` (the same code as `python -m train.knowlip eval`). Results:
`output_dir/eval_results.json` (with the config and the training time), the model in `output_dir/model`.

Choices the paper leaves open: AdamW with linear warm-up over `warmup_ratio` of the steps, then cosine decay to 0
(Table 3's "Warmup, CosineDecay"; BLIP fine-tunes with a cosine schedule); the distillation alpha warms up over the
first epoch as in pre-training (ALBEF does so in its retrieval fine-tuning). Default learning rates and text lengths
are Table 5's (retrieval 1e-5 / 35 tokens, captioning 1e-5 / 100, VQA 2e-5 / 35) and Table 3's (classification
3e-3); epochs default to Table 5's 12. Measured with the small CPU model of `configs/small_real.yaml` on MSTAR SOC:
full fine-tuning at Table 3's 3e-3 diverges to chance (11 % top-1 after 5 epochs), 3e-4 for 15 epochs reaches 82 %;
LoRA trains well at 3e-3 (61 %). Give `--learning_rate` for full fine-tuning of small models.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from sar_utils.atomic import atomic_folder, write_json
from dataset_scripts.geovl.vqa_sets import GRID, region_indicator, target_regions
from dataset_scripts.loading import load_image_text_data
from dataset_scripts.splits import warn_shared_images, with_held_out_split
from modeling_knowlip import (
    SarKnowlipForConditionalGeneration,
    SarKnowlipForImageClassification,
    SarKnowlipForImageTextRetrieval,
    SarKnowlipForQuestionAnswering,
    SarKnowlipProcessor,
    VQA_TASK_TYPES,
)


from ..common.checkpointing import TrainerState, claim_run_folder, load_checkpoint, resolve_checkpoint
from ..common.collapse_guard import CollapseGuard, probe_indices, uniform_loss
from ..common.data import EpochBatches
from ..common.loop import GuardedOptimizer, StepLoss
from ..common.optim import build_adamw
from ..common.config import TrainingOptions, YamlConfig, option
from ..common.run_banner import run_banner
from ..common.run_log import LOGS, METRICS_FILE, RunLog, flat_numbers, trainer_accelerator
from ..common.schedules import build_scheduler
from ..common.sampling import EpochShuffleSampler
from ..common.hub import push_model_dir
from ..common.lora import add_lora
from ..evaluation.metrics import load_metric
from ..evaluation.retrieval import unique_captions
from ..evaluation.vqa import majority_answer_accuracy
from ..evaluation.zero_shot import flat_classification_metrics
from .evaluate import RESULTS_FILE, evaluate_knowlip, evaluate_region_scorer, load_image_texts, load_vqa_data
from .schedule import alpha_at

TASKS = ("classification", "retrieval", "captioning", "vqa")
DEFAULT_LR = {"classification": 3e-3, "retrieval": 1e-5, "captioning": 1e-5, "vqa": 2e-5}
DEFAULT_MAX_LENGTH = {"retrieval": 35, "captioning": 100, "vqa": 35}
VIT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"]


CHECKPOINTS = "checkpoints"


@dataclasses.dataclass
class FinetuneConfig(TrainingOptions, YamlConfig):
    """`python -m train.knowlip finetune` settings (YAML keys and `--field value` flags)."""

    task: str = option("classification", "classification, retrieval, captioning or vqa", choices=TASKS)
    model: str = option("", "SAR-KnowLIP folder with its processor (e.g. a SCIO run's model/)")
    data: str = option("", "labelled / captioned dataset (dataset_scripts.loading); vqa: a geovl vqa folder")
    output_dir: str = option("runs/knowlip_finetune", "folder for model/ and eval_results.json")
    train_split: str = option("train", "split to fine-tune on")
    eval_split: str = option("test", "split to evaluate on (held out of train_split when the data has only that)")
    held_out_fraction: float = option(0.2, "share of train held out (seeded, stratified, whole groups) when the data has "
                                      "no eval_split", gt=0, lt=1)
    epochs: int = option(12, "training epochs (paper Table 5: 12)", min=1)
    batch_size: int = option(32, "training pairs per optimizer step", min=1)
    learning_rate: float | None = option(None, "peak AdamW rate (default: paper Tables 3/5 per task)", gt=0)
    weight_decay: float = option(0.05, "AdamW weight decay", min=0)
    warmup_ratio: float = option(0.1, "share of the steps with linear warm-up, then cosine decay to 0", min=0, lt=1)
    max_length: int | None = option(None, "text tokens (default: Table 5, 35 / 100 for captions)", min=1)
    max_train_samples: int | None = option(None, "a seeded random N training images (vqa: questions)", min=1)
    max_eval_samples: int | None = option(None, "a seeded random N evaluation images (vqa: questions)", min=1)
    image_size: int | None = option(None, "input side in pixels; other than the model's, its ViT position embeddings "
                                    "are interpolated to the new patch grid (BLIP fine-tunes VQA at 480 px after "
                                    "224 px pre-training); null: the model's", min=1)
    region_loss_weight: float = option(0.0, "vqa: weight of the grounding loss that teaches the ViT which 3 x 3 "
                                       "regions hold a target, from the position answers (SarKnowlipConfig."
                                       "vqa_region_weight; 0: off, the paper's recipe)", min=0)
    lora: bool = option(False, "classification: LoRA adapters on the ViT instead of full fine-tuning")
    lora_r: int = option(8, "LoRA rank", min=1)
    lora_alpha: int = option(16, "LoRA scaling numerator", min=1)
    eval_batch_size: int = option(32, "images or texts per evaluation forward", min=1)
    retrieval_k: int = option(16, "ITC candidates re-ranked by ITM in retrieval evaluation", min=1)
    seed: int = option(0, "seed of the head initialisation and the data order", min=0)
    resume: str | None = option(None, "latest or a checkpoint folder under output_dir/checkpoints (a bare --resume is "
                                "latest): continue exactly where that epoch ended")
    overwrite: bool = option(False, "start a new run in an output_dir that holds one (its checkpoints are deleted at "
                             "the start, its model/ replaced at the end); without it such a folder is refused")
    keep_checkpoints: int = option(1, "newest end-of-epoch checkpoints kept", min=1)
    push_to_hub: str | None = option(None, "Hub repo id to upload model/ to (after the evaluation, with its results)")
    hub_private: bool = option(False, "create the Hub repo private")

    BARE_FLAG_VALUES = {"resume": "latest"}

    def check(self) -> None:
        if not self.model or not Path(self.model, "processor_config.json").is_file():
            raise ValueError(f"model must be a SAR-KnowLIP folder with its processor; {self.model!r} is not")
        config_file = Path(self.model, "config.json")
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type") if config_file.is_file() else None
        if model_type != "sar_knowlip":
            raise ValueError(f"model: {self.model} holds a {model_type or 'config-less'} model, not SAR-KnowLIP; give a "
                             "SCIO run's model/ folder (a SARCLIP tower starts SCIO: train.knowlip fit --model towers)")
        if not self.data:
            raise ValueError("data is required (a dataset folder, image folder or table; vqa: a VQA folder)")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite contradict each other: --resume continues the run in output_dir, "
                             "--overwrite replaces it")
        if self.region_loss_weight and self.task != "vqa":
            raise ValueError("region_loss_weight applies to the vqa task only")
        if self.lora and self.task != "classification":
            raise ValueError("lora applies to the classification task only")
        self.learning_rate = self.learning_rate or DEFAULT_LR[self.task]
        self.max_length = self.max_length or DEFAULT_MAX_LENGTH.get(self.task)


def finetune(config: FinetuneConfig, accelerator: Accelerator | None = None) -> dict:
    """Fine-tune, save `output_dir/model`, evaluate; returns (and writes) the results."""
    out = Path(config.output_dir)
    accelerator = accelerator or trainer_accelerator(config, out)
    set_seed(config.seed)
    claim_run_folder(out, ("model", CHECKPOINTS), bool(config.resume), config.overwrite, accelerator,
                     stale=(CHECKPOINTS, "eval", RESULTS_FILE, LOGS, METRICS_FILE))
    processor = SarKnowlipProcessor.from_pretrained(config.model)
    if config.image_size:
        processor.image_processor.size = config.image_size
    task = TASK_SETUPS[config.task](config, processor)
    start = time.perf_counter()
    model, run_log = _train(task, config, accelerator)
    seconds = time.perf_counter() - start
    results = {"task": config.task, "train_examples": task.num_train, "train_seconds": round(seconds, 1)}
    if accelerator.is_main_process:
        with atomic_folder(out / "model") as model_dir:  # appears only when complete
            model.save_pretrained(model_dir)
            processor.save_pretrained(model_dir)
        results |= task.evaluate(model.eval(), out)
        run_log.log(flat_numbers(results, "eval"), run_log.step)  # beside the training curves
        results["config"] = config.to_dict()
        write_json(out / RESULTS_FILE, results, indent=2)
        if config.push_to_hub:
            write_json(out / "model" / RESULTS_FILE, {k: v for k, v in results.items() if k != "config"}, indent=2)
            push_model_dir(out / "model", config.push_to_hub, private=config.hub_private)
    run_log.close()
    accelerator.wait_for_everyone()
    return results


@dataclasses.dataclass
class TaskSetup:
    """A task's model, its training examples as a collate function over example indices, and its evaluation."""

    model: torch.nn.Module
    num_train: int
    collate: callable
    evaluate: callable
    pretraining_losses: bool  # the KnowLIP heads: forward(..., return_loss=True, alpha=...)


def _train(task: TaskSetup, config: FinetuneConfig, accelerator: Accelerator) -> tuple[torch.nn.Module, RunLog]:
    optimizer = build_adamw(task.model, config.learning_rate, config.weight_decay, accelerator.device, rule="all")
    sampler = EpochShuffleSampler(task.num_train, config.seed)
    loader = DataLoader(list(range(task.num_train)), batch_size=config.batch_size, collate_fn=task.collate,
                        sampler=sampler)
    steps_per_epoch = math.ceil(len(loader) / accelerator.num_processes / config.gradient_accumulation_steps)
    total, warmup = steps_per_epoch * config.epochs, round(config.warmup_ratio * steps_per_epoch * config.epochs)
    # stepped once per optimizer step, whatever the Accelerator (not prepared: see ScioTrainer)
    scheduler = build_scheduler("cosine", optimizer, warmup, total)
    if task.pretraining_losses:  # queued features stay negatives; their pre-training image ids mean nothing here
        task.model.queue.image_ids.fill_(-1)
    model, optimizer, loader = accelerator.prepare(task.model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    accelerator.print(run_banner(accelerator, config.batch_size, config.gradient_accumulation_steps))
    checkpoints = Path(config.output_dir) / CHECKPOINTS
    state = TrainerState()
    unwrapped = accelerator.unwrap_model(model)
    alpha = getattr(unwrapped.config, "alpha", 0.0)
    # collapse guard (train/common/collapse_guard.py): classification watches the cross-entropy against ln(classes)
    # and the spread of the ViT's [CLS] states; the other tasks their ITC loss against ln(batch + queue_size) (the
    # queue is always full) and the spread of the ITC embeddings.
    guard = CollapseGuard(config.collapse_patience, config.collapse_cosine, grace_steps=warmup,
                          loss_name="ITC loss" if task.pretraining_losses else "cross-entropy loss",
                          candidates_name="contrastive candidates" if task.pretraining_losses else "classes",
                          warn=accelerator.print)
    probe = task.collate(probe_indices(task.num_train)) if guard.watching else None
    # after everything that draws random numbers before the first step (the probe batch), as the uninterrupted run
    if config.resume:  # model, optimizer, scheduler and RNG states as that epoch ended; the data order follows
        checkpoint = resolve_checkpoint(config.resume, checkpoints)
        state = load_checkpoint(accelerator, checkpoint)
        guard.resume(checkpoint, state.guard)
        accelerator.print(f"resumed from {checkpoint} after epoch {state.epoch}")
    run_log = RunLog(accelerator, config.output_dir, config.to_dict(),
                     (lambda record: record["step"] <= state.global_step) if config.resume else None, state.global_step)
    loop = GuardedOptimizer(accelerator, model, optimizer, scheduler, guard, probe,
                            None if task.pretraining_losses else _cls_features,
                            accumulation=config.gradient_accumulation_steps)
    model.train()

    def forward_backward(batch) -> StepLoss | None:
        if task.pretraining_losses and batch["image_ids"].unique().numel() < 2:
            return None  # ITM needs another image of the batch as its negative (as ScioTrainer)
        extra = {"return_loss": True, "alpha": alpha_at(state.global_step, alpha, steps_per_epoch)} \
            if task.pretraining_losses else {}
        with accelerator.autocast():
            out = model(**batch, **extra)
        loop.backward(out.loss)
        record = {"loss": float(out.loss.detach())}
        if task.pretraining_losses:
            return StepLoss(out.loss_itc, uniform_loss(batch["input_ids"].shape[0] + unwrapped.config.queue_size),
                            {"summed loss": out.loss}, record)
        return StepLoss(out.loss, uniform_loss(unwrapped.config.num_labels), record=record)

    # set_epoch on the prepared loader: it also sets its own epoch counter, which would else win over the sampler's
    batches = EpochBatches(accelerator, loader, loader)
    for epoch in range(state.epoch, config.epochs):  # resumes at an epoch's start
        record = {"epoch": epoch + 1, **loop.train_epoch(state, batches.epoch(epoch), forward_backward,
                                                         f"{config.task} epoch {epoch + 1}/{config.epochs}"),
                  "lr": scheduler.get_last_lr()[0]}
        run_log.log(record, state.global_step)
        if accelerator.is_main_process:
            guard_text = "".join(f", {name} {record[name]:.4f}" for name in loop.last_check)
            print(f"epoch {epoch + 1}/{config.epochs}: loss {record.get('loss', float('nan')):.4f}, lr "
                  f"{record['lr']:.2e}, batches skipped (one image only) {record['skipped_batches']}{guard_text}")
        state.epoch = epoch + 1
        loop.save_checkpoint(checkpoints, state, config.keep_checkpoints)
    model = accelerator.unwrap_model(model)
    return (model.merge_and_unload() if config.lora else model), run_log


def _cls_features(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """A classifier's image features for the collapse guard: the ViT's [CLS] state, which the head reads."""
    return model.vision_model(pixel_values=pixel_values).last_hidden_state[:, 0]


def _splits(config: FinetuneConfig) -> tuple[datasets.Dataset, datasets.Dataset]:
    """The train and evaluation splits of `config.data`. Data with a train split only gets the held-out split SARCLIP's
    `fit` and `eval` use (`dataset_scripts.splits.with_held_out_split`: seeded, whole groups, stratified by label);
    evaluation images that are also training images are warned about, as there."""
    loaded = load_image_text_data(config.data, allow_outside_data=config.allow_outside_data)
    if config.eval_split not in loaded and set(loaded) == {config.train_split}:
        loaded = with_held_out_split(loaded, config.train_split, config.eval_split, config.held_out_fraction,
                                     config.seed, config.data)
    for split in (config.train_split, config.eval_split):
        if split not in loaded:
            raise ValueError(f"{config.data}: no split {split!r} (splits: {list(loaded)})")
    warn_shared_images(loaded[config.train_split], loaded[config.eval_split], config.train_split, config.eval_split,
                       config.data)
    return (_subset(loaded[config.train_split], config.max_train_samples, config.seed),
            _subset(loaded[config.eval_split], config.max_eval_samples, config.seed))


def _subset(data: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset of `limit` rows (splits are often sorted by class), or all rows."""
    return data.shuffle(seed=seed).select(range(min(limit, len(data)))) if limit else data


def _load_model(model_class, config: FinetuneConfig, **kwargs):
    """`model_class.from_pretrained(config.model, **kwargs)`, for `config.image_size` inputs when that is set."""
    model = model_class.from_pretrained(config.model, **kwargs)
    if config.image_size and config.image_size != model.config.vision_config.image_size:
        model = model.with_image_size(config.image_size)
    return model


def _classification(config: FinetuneConfig, processor: SarKnowlipProcessor) -> TaskSetup:
    train, test = _splits(config)
    label = train.features.get("label")
    if not isinstance(label, datasets.ClassLabel):
        raise ValueError(f"{config.data}: classification needs a ClassLabel `label` column (columns: "
                         f"{train.column_names})")
    names = label.names
    model = _load_model(SarKnowlipForImageClassification, config, num_labels=len(names), id2label=dict(enumerate(names)),
                        label2id={n: i for i, n in enumerate(names)})
    if config.lora:
        model = add_lora(model, VIT_LORA_TARGETS, config.lora_r, config.lora_alpha, towers=("vision_model",))
        model.base_model.model.classifier.requires_grad_(True)  # the new head always trains (merged at the end)

    def collate(indices):
        rows = train[indices]
        return {"pixel_values": processor.image_processor(rows["image"], return_tensors="pt")["pixel_values"],
                "labels": torch.tensor(rows["label"])}

    @torch.no_grad()
    def evaluate(model, out: Path) -> dict:
        ranked, device = [], next(model.parameters()).device
        for start in range(0, len(test), config.eval_batch_size):
            pixels = processor.image_processor(test[start:start + config.eval_batch_size]["image"],
                                               return_tensors="pt")["pixel_values"].to(device)
            ranked += model(pixels).logits.argsort(dim=1, descending=True)[:, :3].tolist()
        results = load_metric("sar_classification").compute(
            predictions=ranked, references=test["label"], num_classes=len(names), top_k=(1, 3))
        return {**flat_classification_metrics(results, names, "finetune"), "test_examples": len(test)}

    return TaskSetup(model, len(train), collate, evaluate, pretraining_losses=False)


def _image_text(config: FinetuneConfig, processor: SarKnowlipProcessor) -> TaskSetup:
    model_class = SarKnowlipForImageTextRetrieval if config.task == "retrieval" else SarKnowlipForConditionalGeneration
    weights = {"mlm_weight": 0.0} if config.task == "retrieval" else {}  # Table 5: retrieval trains ITC + ITM
    model = _load_model(model_class, config, **weights)
    image_size = model.config.vision_config.image_size
    train, test = _splits(config)
    images, texts = load_image_texts(train, image_size)
    pairs = [(image, text) for image, captions in enumerate(texts) for text in dict.fromkeys(captions)]

    def collate(indices):
        chosen = [pairs[i] for i in indices]
        encoded = processor(images=[images[i] for i, _ in chosen], text=[t for _, t in chosen],
                            max_length=config.max_length)
        return {**encoded, "image_ids": torch.tensor([i for i, _ in chosen])}

    def evaluate(model, out: Path) -> dict:
        distinct, _ = unique_captions(load_image_texts(test, image_size)[1])
        results = evaluate_knowlip(model, processor, [config.task], out / "eval", data=test,
                                   batch_size=config.eval_batch_size, k=config.retrieval_k)
        return {**results, "test_images": len(test), "test_texts": len(distinct)}

    return TaskSetup(model, len(pairs), collate, evaluate, pretraining_losses=True)


def _vqa(config: FinetuneConfig, processor: SarKnowlipProcessor) -> TaskSetup:
    model = _load_model(SarKnowlipForQuestionAnswering, config, vqa_region_weight=config.region_loss_weight,
                        vqa_region_grid=GRID)
    train, test = (load_vqa_data(config.data, split) for split in (config.train_split, config.eval_split))
    # the regions of every image, before subsetting: a question kept without its image's others still knows them
    regions, test_regions = [target_regions(split["task_type"], split["answer"], split["image_id"])
                             if config.region_loss_weight else {} for split in (train, test)]
    train, test = _subset(train, config.max_train_samples, config.seed), _subset(test, config.max_eval_samples, config.seed)
    image_index = {image_id: i for i, image_id in enumerate(dict.fromkeys(train["image_id"]))}

    def region_labels(image_id: str) -> list[float]:  # a row of -1: no region labels (a centred chip)
        return region_indicator(regions[image_id]) if image_id in regions else [-1.0] * GRID * GRID

    def collate(indices):
        rows = train[indices]
        encoded = processor.vqa_inputs(rows["question"], rows["task_type"], images=rows["image"],
                                       answers=rows["answer"], max_length=config.max_length)
        batch = {**encoded, "image_ids": torch.tensor([image_index[i] for i in rows["image_id"]])}
        if config.region_loss_weight:
            batch["region_labels"] = torch.tensor([region_labels(i) for i in rows["image_id"]])
        return batch

    def evaluate(model, out: Path) -> dict:
        results = evaluate_knowlip(model, processor, ["vqa"], out / "eval", vqa_data=test,
                                   batch_size=config.eval_batch_size)
        prior = majority_answer_accuracy(train["answer"], train["task_type"], test["answer"], test["task_type"],
                                         VQA_TASK_TYPES)
        if model.region_head is not None:
            results["vqa_region_scorer"] = evaluate_region_scorer(model, processor, test, test_regions,
                                                                  config.eval_batch_size)
        return {**results, "vqa_majority_answer": dataclasses.asdict(prior), "test_questions": len(test)}

    return TaskSetup(model, len(train), collate, evaluate, pretraining_losses=True)


TASK_SETUPS = {"classification": _classification, "retrieval": _image_text, "captioning": _image_text, "vqa": _vqa}

__all__ = ["FinetuneConfig", "TASKS", "finetune"]
