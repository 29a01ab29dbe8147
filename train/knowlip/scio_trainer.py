"""SCIO training of SAR-KnowLIP with Accelerate (paper 3.4, Algorithm 1; schedule of paper 4.1).

The run is a fixed list of units of work, each followed by an atomic checkpoint, so an interrupted run resumes at the
unit after the last checkpoint:
  stage 1: `stage_epochs[0]` epochs of ITC + ITM + MLM (eq. 7) on the full texts;
  screening pass (eqs. 10-11)                           -> text version 1 (noise pool);
  stage 2: `stage_epochs[1]` epochs, ITC/ITM on the full text, MLM targets outside the noise pool;
  reconstruction pass (eqs. 12-15)                      -> text version 2 (refined texts, remaining noise pool);
  stage 3: `stage_epochs[2]` epochs on the refined texts, MLM targets outside the remaining noise pool.
Choices: Algorithm 1 wraps the phases in `for iteration = 1 to max_iter` but paper 4.1 trains 3 x 12 epochs, so the
stages run once; screening and reconstruction each run once, at the start of stages 2 and 3, with the model of the
end of the previous stage (the scores of one pass all use one queue state).

Text versions are `datasets` folders `output_dir/texts/v{N}` (v0 = the input) with one row per image:
`subtexts` (list[str]), `noise` (list[bool], the noise pool), `refined` (list[bool], replaced by reconstruction),
`delta_itc` / `delta_itm` (list[float], the last pass's Δ values, NaN where not computed).

Distributed: the model's ITC negatives are momentum features (the batch's and the queue's, no gradient), and every
process's momentum features reach all queues through the model's own all-gather. No gradient flows through any
negative, so an autograd all-gather (`torch.distributed.nn.functional.all_gather`) would change nothing here; DDP
averages the gradients.

LoRA: give a `PeftModel` (see `train.common.lora.add_lora` with `towers=train.knowlip.fit.ONLINE_TOWERS`); only its
adapters are optimised, checkpoints hold the whole state (momentum encoders and queues included) and
`output_dir/model` holds the adapters. The passes split the images over the processes and gather the results
(`gather_object`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from peft import PeftModel
from torch.utils.data import DataLoader, RandomSampler

from sar_utils.atomic import atomic_folder
from model_cards import knowlip_model_card

from ..common.checkpointing import TrainerState, list_checkpoints, load_checkpoint
from ..common.collapse_guard import CollapseGuard, probe_indices, uniform_loss
from ..common.loop import GuardedOptimizer, StepLoss
from ..common.optim import build_adamw
from ..common.config import TrainingOptions, check_options, option
from ..common.run_banner import run_banner
from ..common.run_log import RunLog, trainer_accelerator
from ..common.schedules import build_scheduler
from .schedule import alpha_at, check_warmup, steps_per_epoch
from .scio_passes import ModelTextOps, reconstruct_texts, screen_texts
from ..sarclip.data import caption_id
from .scio_text import encode_subtexts
from .subtexts import scio_subtexts

logger = logging.getLogger(__name__)

RUN_FILE = "scio_run.json"
TEXT_FEATURES = datasets.Features({
    "subtexts": datasets.List(datasets.Value("string")),
    "noise": datasets.List(datasets.Value("bool")),
    "refined": datasets.List(datasets.Value("bool")),
    "delta_itc": datasets.List(datasets.Value("float32")),
    "delta_itm": datasets.List(datasets.Value("float32")),
})


@dataclasses.dataclass
class ScioConfig(TrainingOptions):
    """SCIO settings; defaults are paper 4.1 (AdamW, weight decay 0.05, lr 3e-4 warmed up from 1e-6 over 3000 steps,
    then x0.9 per epoch down to 1e-6; batch 32; 12 epochs per stage; distillation alpha warmed up over the first
    epoch as in ALBEF). Schedules: `train.knowlip.schedule`."""

    output_dir: str = option("runs/knowlip_scio", "run folder: checkpoints, text versions, log, final model")
    stage_epochs: tuple[int, int, int] = option((12, 12, 12), "epochs of SCIO stages 1, 2, 3 (paper: 12 each)", min=0)
    batch_size: int = option(32, "images per optimizer step over all processes' batches, per process", min=1)
    learning_rate: float = option(3e-4, "peak AdamW learning rate", gt=0)
    weight_decay: float = option(0.05, "AdamW weight decay", min=0)
    warmup_steps: int = option(3000, "optimizer steps of linear warm-up from warmup_lr (must fit in the run)", min=0)
    warmup_lr: float = option(1e-6, "learning rate at step 0", min=0)
    min_lr: float = option(1e-6, "floor of the decayed learning rate", min=0)
    lr_decay_rate: float = option(0.9, "decay factor per epoch's worth of steps after the warm-up", gt=0, max=1)
    alpha_warmup_epochs: float = option(1.0, "epochs over which the distillation alpha rises from 0 (ALBEF; 0: off)", min=0)
    max_length: int = option(256, "tokens of a whole text (all sub-texts); longer texts are cut and counted", min=2)
    max_fragment_tokens: int = option(40, "longest fragment the decoder may write in reconstruction", min=1)
    pass_batch_size: int = option(16, "images per screening/reconstruction batch (each scored with 1 + n texts)", min=1)
    seed: int = option(0, "seed of initialisation and data order", min=0)
    image_column: str = option("image", "image column of the data")
    subtexts_column: str = option("subtexts", "sub-text list column, if the data has one (train/knowlip/subtexts.py)")
    keep_checkpoints: int = option(1, "checkpoints kept (newest)", min=1)
    positive_groups: str = option("auto", "what else counts as a positive in ITC, ITM negatives and screening, "
                                  "besides the own image: label (same class; needs a `label` column), caption "
                                  "(same whole text), image (nothing else), auto (label if the data has one, else "
                                  "caption)", choices=("auto", "label", "caption", "image"))
    screening_margin: float = option(0.3, "eq. 10 flags a sub-text whose removal lowers the pair's ITC loss by more "
                                     "than this many nats (0: the paper's strict < 0, which flags a third of clean "
                                     "template texts; 0.3: beyond the 1st percentile of clean sub-texts on MSTAR, "
                                     "scio_rules)", min=0)
    pair_itc_screening: bool = option(True, "screening also flags a whole text whose ITC loss is above its uniform "
                                      "value ln(candidates): the image finds it less likely than chance (finds "
                                      "another image's whole caption list, which eqs. 10-11 cannot; false: the "
                                      "paper's screening)")
    pair_screening_threshold: float | None = option(None, "screening also flags a whole text whose ITM match "
                                                    "probability is below this (scio_rules.screen_pairs; e.g. 0.5, "
                                                    "only with an ITM that learned: at its 1:2 prior p = 0.33 it "
                                                    "flags every text); null: off, the paper's screening", min=0, max=1)
    pair_rank_threshold: float | None = option(None, "screening also flags a whole text that its image ranks below "
                                               "this share of the queued texts (ITC; scio_rules.screen_pairs; e.g. "
                                               "0.7: finds texts of another class, docs/RESULTS.md); null: off",
                                               min=0, max=1)

    def units(self) -> list[tuple[str, int]]:
        """The run's units of work in order: ("train", stage) per epoch, "screen" and "reconstruct" passes."""
        first, second, third = self.stage_epochs
        return ([("train", 1)] * first + [("screen", 2)] + [("train", 2)] * second + [("reconstruct", 3)]
                + [("train", 3)] * third)


def positive_group_rule(setting: str, dataset: datasets.Dataset) -> str:
    """`ScioConfig.positive_groups` resolved for `dataset`: "label", "caption" or "image"."""
    if setting not in ("auto", "label", "caption", "image"):
        raise ValueError(f"positive_groups must be auto, label, caption or image, got {setting!r}")
    if setting == "auto":
        return "label" if "label" in dataset.column_names else "caption"
    if setting == "label" and "label" not in dataset.column_names:
        raise ValueError(f"positive_groups 'label' needs a `label` column (columns: {dataset.column_names})")
    return setting


def load_text_version(output_dir: str | Path, version: int) -> datasets.Dataset:
    """Text version `version` of a SCIO run (0 = input texts, 1 = after screening, 2 = after reconstruction)."""
    path = Path(output_dir) / "texts" / f"v{version}"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no SCIO text version {version} (written after its pass has run)")
    return datasets.load_from_disk(str(path))


class ScioTrainer:
    """Runs SCIO on `dataset` (an image column and a column of sub-text lists) and returns the last text version.

    `processor` is a `SarKnowlipProcessor` (its image processor and tokenizer are used); the sub-texts come from
    the dataset by the rule of `train.knowlip.subtexts`. Re-running with the same `output_dir` resumes after the last
    completed unit. The dataset is map-style, not streamed: the screening and reconstruction passes address every image
    by index and rewrite its texts.

    The scheduler ("scio", `train.common.schedules`) is a `LambdaLR` stepped once per optimizer step and registered for
    checkpointing, not given to `accelerator.prepare`: a prepared scheduler steps once per process unless the
    caller's Accelerator was built with `step_scheduler_with_optimizer=False`, so the rate would depend on the process
    count.
    """

    def __init__(self, model, processor, dataset: datasets.Dataset, config: ScioConfig,
                 accelerator: Accelerator | None = None):
        check_options(config)
        if config.image_column not in dataset.column_names:
            raise ValueError(f"SCIO dataset has no column {config.image_column!r} (columns: {dataset.column_names})")
        self.texts, _ = scio_subtexts(dataset, config.subtexts_column)
        if len(dataset) < 2:
            raise ValueError("SCIO needs at least 2 images (ITM draws its negatives from other images of the batch)")
        self.dataset, self.config = dataset, config
        self.group_rule = positive_group_rule(config.positive_groups, dataset)
        self.labels = list(dataset["label"]) if self.group_rule == "label" else None
        self.processor = processor
        self.image_processor, self.tokenizer = processor.image_processor, processor.tokenizer
        self.noise = [[False] * len(text) for text in self.texts]
        self.output_dir = Path(config.output_dir)
        self.accelerator = accelerator or trainer_accelerator(config, config.output_dir)
        total_steps = sum(config.stage_epochs) * self.steps_per_epoch
        check_warmup(config.warmup_steps, total_steps)
        optimizer = build_adamw(model, config.learning_rate, config.weight_decay, self.accelerator.device, rule="all")
        self.scheduler = build_scheduler("scio", optimizer, config.warmup_steps, total_steps, warmup_lr=config.warmup_lr,
                                         min_lr=config.min_lr, decay_rate=config.lr_decay_rate,
                                         steps_per_epoch=self.steps_per_epoch)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)
        # collapse guard (train/common/collapse_guard.py): the ITC loss against ln(batch + queue_size), the spread of
        # a fixed probe batch; not the summed multi-task loss, whose ITM / MLM parts have other uniform values
        self.guard = CollapseGuard(config.collapse_patience, config.collapse_cosine, grace_steps=config.warmup_steps,
                                   loss_name="ITC loss", warn=self.accelerator.print)
        self.loop = GuardedOptimizer(self.accelerator, self.model, self.optimizer, self.scheduler, self.guard,
                                     accumulation=config.gradient_accumulation_steps)

    # ----- schedule -----

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps of one epoch (`gradient_accumulation_steps` batches each)."""
        batches = steps_per_epoch(len(self.dataset), self.config.batch_size, self.accelerator.num_processes)
        return math.ceil(batches / self.config.gradient_accumulation_steps)

    def _alpha(self, step: int) -> float:
        alpha = self.accelerator.unwrap_model(self.model).config.alpha
        return alpha_at(step, alpha, round(self.config.alpha_warmup_epochs * self.steps_per_epoch))

    # ----- run -----

    def run(self) -> datasets.Dataset:
        """Run (or resume) all units; returns the last text version. The final model goes to `output_dir/model`."""
        accelerator, units = self.accelerator, self.config.units()
        accelerator.print(run_banner(accelerator, self.config.batch_size, self.config.gradient_accumulation_steps))
        checkpoints = self.output_dir / "checkpoints"
        state = self._resume(checkpoints)
        if state.epoch:
            self.guard.resume(list_checkpoints(checkpoints)[-1], state.guard)
        done = state.epoch  # units done: their records stay (screening units share a step with training units)
        self.run_log = RunLog(accelerator, self.output_dir, dataclasses.asdict(self.config),
                              (lambda record: record["unit"] < done) if done else None, state.global_step)
        if state.epoch == 0 and accelerator.is_main_process and not (self.output_dir / "texts" / "v0").is_dir():
            self._write_version(0, self.texts, self.noise, [[False] * len(t) for t in self.texts], None, None)
        accelerator.wait_for_everyone()
        self._load_version(self._version_after(state.epoch, units))
        for index in range(state.epoch, len(units)):
            kind, stage = units[index]
            if kind == "train":
                record = self._train_epoch(stage, index, state)
            else:
                record = self._screening_pass() if kind == "screen" else self._reconstruction_pass()
                self._load_version(self._version_after(index + 1, units))
            logger.info("SCIO unit %d: %s", index, record)
            self.run_log.log({"unit": index, "kind": kind, "stage": stage, **record}, state.global_step)
            state.epoch = index + 1  # here: units of work done (epochs and passes)
            self.loop.save_checkpoint(checkpoints, state, self.config.keep_checkpoints)
        self.run_log.close()
        if accelerator.is_main_process:
            stages = ", ".join(f"stage {i + 1}: {n} epochs" for i, n in enumerate(self.config.stage_epochs))
            with atomic_folder(self.output_dir / "model") as model_dir:  # appears only when complete
                accelerator.unwrap_model(self.model).save_pretrained(model_dir)
                self.processor.save_pretrained(model_dir)
                knowlip_model_card(preset="custom", source="trained with this repository's SCIO trainer",
                                   training=f"SCIO on {len(self.dataset)} images ({stages})").save(
                    model_dir / "README.md")
        accelerator.wait_for_everyone()
        return load_text_version(self.output_dir, self._version_after(len(units), units))

    def identity(self) -> dict:
        """What makes `output_dir` this run's: the images' count and texts (a hash of the input sub-texts), the seed and
        the units (a longer run may extend a finished one: units compare on their common prefix)."""
        texts = hashlib.sha1(json.dumps(self.texts, ensure_ascii=False).encode("utf-8")).hexdigest()
        return {"num_images": len(self.dataset), "texts_sha1": texts, "seed": self.config.seed,
                "units": [list(u) for u in self.config.units()]}

    def check_run_folder(self) -> None:
        """ValueError when `output_dir` holds another SCIO run (other data, texts or seed, or other units): resuming
        it would train nothing, or train this data on that run's schedule."""
        run_file = self.output_dir / RUN_FILE
        if not run_file.is_file():
            return
        saved, now = json.loads(run_file.read_text(encoding="utf-8")), self.identity()
        changed = [key for key in ("num_images", "texts_sha1", "seed") if key in saved and saved[key] != now[key]]
        units = saved["units"][: len(now["units"])] != now["units"][: len(saved["units"])]
        if changed or units:
            what = ", ".join(changed + (["units"] if units else []))
            raise ValueError(f"{run_file}: this output_dir belongs to a different SCIO run (its {what} differ: "
                             f"{saved['num_images']} images, seed {saved.get('seed')}, units {saved['units']}); use "
                             "another output_dir")

    def _resume(self, checkpoints: Path) -> TrainerState:
        run_file = self.output_dir / RUN_FILE
        self.check_run_folder()
        identity = self.identity()
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            run_file.write_text(json.dumps(identity), encoding="utf-8")
        found = list_checkpoints(checkpoints)
        if not found:
            return TrainerState()
        state = load_checkpoint(self.accelerator, found[-1])
        logger.info("SCIO resumes from %s after %d units", found[-1], state.epoch)
        return state

    @staticmethod
    def _version_after(units_done: int, units: list[tuple[str, int]]) -> int:
        return sum(kind != "train" for kind, _ in units[:units_done])

    # ----- data -----

    def _images(self, indices: list[int]) -> torch.Tensor:
        images = self.dataset[indices][self.config.image_column]
        return self.image_processor(images, return_tensors="pt")["pixel_values"]

    def _group_ids(self, indices: list[int]) -> torch.Tensor:
        """Positive groups (`positive_groups`): class labels, or a stable hash of each whole text."""
        if self.group_rule == "label":
            return torch.tensor([self.labels[i] for i in indices])
        return torch.tensor([caption_id(" ".join(self.texts[i])) for i in indices])

    def _collate(self, indices: list[int], stage: int) -> dict:
        encoded = encode_subtexts(self.tokenizer, [self.texts[i] for i in indices], self.config.max_length)
        batch = {
            "pixel_values": self._images(indices),
            "input_ids": encoded.input_ids,
            "attention_mask": encoded.attention_mask,
            "image_ids": torch.tensor(indices),
            **({} if self.group_rule == "image" else {"group_ids": self._group_ids(indices)}),
            "truncated": torch.tensor(encoded.truncated),
        }
        if stage > 1:  # the noise pool is never an MLM target (stages 2 and 3); ITC/ITM still see the full text
            batch["mlm_exclude_mask"] = encoded.token_mask([self.noise[i] for i in indices])
        return batch

    # ----- units -----

    def _train_epoch(self, stage: int, unit_index: int, state: TrainerState) -> dict:
        accelerator, model = self.accelerator, self.model
        generator = torch.Generator().manual_seed(self.config.seed + unit_index)
        loader = accelerator.prepare(DataLoader(
            list(range(len(self.dataset))), batch_size=self.config.batch_size,
            sampler=RandomSampler(range(len(self.dataset)), generator=generator),
            collate_fn=lambda indices: self._collate(indices, stage),
        ))
        model.train()
        truncated, lr_trace = 0, []
        self.loop.probe = self._collate(probe_indices(len(self.dataset)), stage) if self.guard.watching else None
        queue_size = accelerator.unwrap_model(model).config.queue_size

        def forward_backward(batch) -> StepLoss | None:
            nonlocal truncated
            truncated += int(batch.pop("truncated"))
            if batch["image_ids"].numel() < 2:  # ITM needs another image of the batch as its negative
                return None
            with accelerator.autocast():
                out = model(**batch, alpha=self._alpha(state.global_step), return_loss=True)
            self.loop.backward(out.loss)
            lr_trace.append(self.scheduler.get_last_lr()[0])
            # the ITC negatives are the batch's momentum features and the queue, always full: B = batch + queue_size;
            # a loss whose weight is 0 is None and counts 0
            return StepLoss(out.loss_itc, uniform_loss(batch["image_ids"].numel() + queue_size),
                            {"summed loss (ITC + ITM + MLM)": out.loss},
                            {name: 0.0 if getattr(out, name) is None else float(getattr(out, name).detach())
                             for name in ("loss", "loss_itc", "loss_itm", "loss_mlm")})

        record = self.loop.train_epoch(state, loader, forward_backward,
                                       f"SCIO stage {stage} (unit {unit_index + 1}/{len(self.config.units())})")
        # the ITC loss is the one the guard compares with ln B here
        record = {("itc_over_uniform" if name == "loss_over_uniform" else name): value for name, value in record.items()}
        return {**record, "truncated_texts": truncated, "lr": self.scheduler.get_last_lr()[0], "lr_trace": lr_trace}

    def _pass_batches(self):
        """This process's share of the images, in batches of (indices, image token states)."""
        model = self.accelerator.unwrap_model(self.model)
        if isinstance(model, PeftModel):  # the SAR-KnowLIP inside, with its LoRA layers active
            model = model.get_base_model()
        model.eval()
        with self.accelerator.split_between_processes(list(range(len(self.dataset)))) as mine:
            for start in range(0, len(mine), self.config.pass_batch_size):
                indices = mine[start : start + self.config.pass_batch_size]
                pixel_values = self._images(indices).to(self.accelerator.device)
                with torch.no_grad():  # passes run in float32 (see _screening_pass)
                    image_embeds = model.encode_image(pixel_values)[0]
                groups = None if self.group_rule == "image" else self._group_ids(indices).to(self.accelerator.device)
                yield indices, ModelTextOps(model, self.tokenizer, image_embeds,
                                            torch.tensor(indices, device=self.accelerator.device),
                                            self.config.max_length, self.config.max_fragment_tokens,
                                            group_ids=groups)

    def _screening_pass(self) -> dict:
        rows, counts = [], {"candidates": 0, "noisy": 0, "noisy_pairs": 0, "truncated_texts": 0}
        # No autocast in the passes: in bf16 the small ΔITM of eq. 11 round to 0 (a tie, so nothing is flagged).
        for indices, ops in self._pass_batches():
            result = screen_texts([self.texts[i] for i in indices], ops.score, self.config.pair_screening_threshold,
                                  self.config.pair_rank_threshold, self.config.pair_itc_screening,
                                  self.config.screening_margin)
            counts["candidates"] += result.candidates
            counts["noisy"] += result.noisy
            counts["noisy_pairs"] += result.noisy_pairs
            counts["truncated_texts"] += ops.truncated
            rows += [(i, self.texts[i], result.noise[k], [False] * len(self.texts[i]), result.delta_itc[k],
                      result.delta_itm[k]) for k, i in enumerate(indices)]
        return self._finish_pass(1, rows, counts)

    def _reconstruction_pass(self) -> dict:
        rows, counts = [], {"attempted": 0, "accepted": 0, "empty": 0, "truncated_texts": 0}
        for indices, ops in self._pass_batches():
            result = reconstruct_texts([self.texts[i] for i in indices], [self.noise[i] for i in indices],
                                       ops.fill, ops.score, self.tokenizer.mask_token)
            for name, value in result.counts.items():
                counts[name] += value
            counts["truncated_texts"] += ops.truncated
            rows += [(i, result.texts[k], result.noise[k], result.refined[k], result.delta_itc[k], result.delta_itm[k])
                     for k, i in enumerate(indices)]
        return self._finish_pass(2, rows, counts)

    def _finish_pass(self, version: int, rows: list, counts: dict) -> dict:
        rows = sorted(gather_object(rows), key=lambda row: row[0])
        totals = {name: sum(gather_object([value])) for name, value in counts.items()}
        if self.accelerator.is_main_process:
            _, texts, noise, refined, delta_itc, delta_itm = zip(*rows)
            self._write_version(version, list(texts), list(noise), list(refined), list(delta_itc), list(delta_itm))
        self.accelerator.wait_for_everyone()
        return {"text_version": version, **totals}

    # ----- text versions -----

    def _write_version(self, version: int, texts, noise, refined, delta_itc, delta_itm) -> None:
        """Write `texts/v{version}` atomically (a temporary folder renamed in one step)."""
        nan_rows = [[math.nan] * len(text) for text in texts]
        table = datasets.Dataset.from_dict({
            "subtexts": texts, "noise": noise, "refined": refined,
            "delta_itc": delta_itc or nan_rows, "delta_itm": delta_itm or nan_rows,
        }, features=TEXT_FEATURES)
        final = self.output_dir / "texts" / f"v{version}"
        with atomic_folder(final) as tmp:
            table.save_to_disk(str(tmp))

    def _load_version(self, version: int) -> None:
        table = load_text_version(self.output_dir, version)
        if len(table) != len(self.dataset):
            raise ValueError(f"{self.output_dir}/texts/v{version} has {len(table)} rows for {len(self.dataset)} images")
        self.texts = [list(text) for text in table["subtexts"]]
        self.noise = [list(flags) for flags in table["noise"]]



__all__ = ["ScioConfig", "ScioTrainer", "load_text_version"]
