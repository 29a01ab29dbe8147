"""The SARCLIP contrastive trainer: pre-training and fine-tuning on one CPU, one GPU or many (`accelerate launch`)."""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dataset_scripts.captions.class_names import load_class_words
from sar_utils.atomic import folder_lock, replace_folder, staging_folder

from ..common.collapse_guard import (
    PROBE_SIZE,
    CollapseGuard,
    TrainingCollapsedError,
    probe_indices,
    uniform_loss,
)
from ..common.checkpointing import (
    TrainerState,
    claim_run_folder,
    load_checkpoint,
    read_json,
    resolve_checkpoint,
    write_json,
)
from ..common.hub import push_model_dir, write_model_card
from ..common.lora import add_lora
from ..common.data import EpochBatches
from ..common.loop import GuardedOptimizer, StepLoss
from ..common.optim import build_adamw
from ..common.loss_curve import save_loss_curve
from ..common.run_banner import run_banner
from ..common.sampling import EpochShuffleSampler
from ..common.run_log import LOGS, METRICS_FILE, RunLog, flat_numbers, trainer_accelerator
from ..common.schedules import build_scheduler
from ..evaluation.dataset_eval import evaluate_model
from .augment import SarAugment
from .config import TrainConfig
from .data import (
    ImageTextCollator,
    class_prompts,
    load_image_text_dataset,
    load_streaming_eval_dataset,
    positive_grouping,
    training_view,
)
from .freezing import apply_partial_unfreezing
from .grad_cache import contrastive_step
from .model_io import load_trained_model
from .model_setup import build_tokenizer, load_model_and_processor
from .performance import channels_last, dataloader_kwargs, maybe_compile
from .streaming import StreamingPairs, parquet_shards

CHECKPOINTS = "checkpoints"
FINAL = "final"
CONFIG_FILE = "train_config.yaml"
TRAINING_LOG = "training_log.json"
LOSS_CURVE = "training_loss.png"
TOKENIZER = "tokenizer"
BASE_MODEL = "base_model"
# `auto_prompt_loss_weight`: a starting loss above this multiple of its uniform value means confidently wrong
# (measured on the quickstart model: OpenSARShip 2.00 in its own radiometry, 3.56 mapped per chip; MSTAR 1.03-1.16)
CONFIDENTLY_WRONG = 1.5


@dataclasses.dataclass
class TrainResult:
    model_dir: Path
    state: TrainerState
    losses: list[float]
    metrics: dict[str, float]


def fit(config: TrainConfig, accelerator: Accelerator | None = None) -> TrainResult:
    """Train as configured; writes checkpoints, logs and the final model under `config.output_dir` (locked while the
    run writes it: a second run into the same folder is refused while this one lives)."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return _fit(config, accelerator)
    with folder_lock(config.output_dir):
        return _fit(config, accelerator)


def _fit(config: TrainConfig, accelerator: Accelerator | None = None) -> TrainResult:
    output_dir = Path(config.output_dir)
    accelerator = accelerator or trainer_accelerator(config, output_dir)
    set_seed(config.seed)
    claim_run_folder(output_dir, (FINAL, CHECKPOINTS), bool(config.resume), config.overwrite, accelerator,
                     stale=(CHECKPOINTS, TOKENIZER, LOGS, TRAINING_LOG, METRICS_FILE))
    if config.streaming:  # nothing read into memory; a missing split is an error before any training
        shards = parquet_shards(config.data, config.train_split)
        if config.eval_split and config.eval_tasks:
            parquet_shards(config.data, config.eval_split)
        dataset = train_set = None
    else:
        dataset = load_image_text_dataset(config)
        train_set = dataset[config.train_split]
        if config.max_train_samples:
            train_set = train_set.select(range(min(config.max_train_samples, len(train_set))))
    model, processor = load_model_and_processor(shared_tokenizer(config, accelerator, train_set), train_set=train_set)
    apply_partial_unfreezing(model, config.trainable_vision_layers, config.trainable_text_layers)
    if config.gradient_checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    if config.lora:
        if not model.config.name_or_path:  # a preset's random init: save it, so the adapters name a base to load
            base_dir = output_dir / BASE_MODEL
            if accelerator.is_main_process and not (base_dir / "config.json").is_file():
                model.save_pretrained(base_dir)
                processor.save_pretrained(base_dir)
            accelerator.wait_for_everyone()
            model = type(model).from_pretrained(base_dir)
        model = add_lora(model, config.lora_target_modules, config.lora_r, config.lora_alpha, config.lora_dropout)
    maybe_compile(channels_last(model), config.compile)

    step_batch = config.batch_size * config.gradient_accumulation_steps  # per process
    collator = ImageTextCollator(processor, config.seed, None, SarAugment(config.augment, config.translate_fraction,
                                                                          config.seed))
    loader_kwargs = dataloader_kwargs(config.num_workers, accelerator.device)
    optimizer = build_adamw(model, config.learning_rate_for(model.config.vision_config.is_resnet), config.weight_decay,
                            accelerator.device, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon)
    if config.streaming:
        # each process streams its own part (split_dataset_by_node): the loader is not handed to accelerate
        stream = StreamingPairs(shards, step_batch, collator, config.seed, accelerator.process_index,
                                accelerator.num_processes, config.shuffle_buffer)
        collator.group_by = positive_grouping(None, config.multi_positive, stream.features)
        batches = EpochBatches(accelerator, DataLoader(stream, batch_size=None, **loader_kwargs), stream, streamed=True)
        model, optimizer = accelerator.prepare(model, optimizer)
        steps_per_epoch = len(stream)
    else:
        stream = None
        train_view = training_view(train_set)
        sampler = EpochShuffleSampler(len(train_view), config.seed)
        collator.group_by = positive_grouping(train_set, config.multi_positive)
        loader = DataLoader(train_view, batch_size=step_batch, sampler=sampler, collate_fn=collator, drop_last=True,
                            **loader_kwargs)
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        batches = EpochBatches(accelerator, loader, sampler)
        steps_per_epoch = len(loader)
        if steps_per_epoch == 0:
            raise ValueError(
                f"{len(train_view)} training samples give no full step of {step_batch} x {accelerator.num_processes} "
                "samples: lower batch_size / gradient_accumulation_steps"
            )
    group_by = collator.group_by
    accelerator.print(run_banner(accelerator, config.batch_size, config.gradient_accumulation_steps))
    prompt_weight = config.prompt_loss_weight
    if prompt_weight is None:  # auto: from the starting model's loss on the training chips
        prompt_weight = 0.0 if config.gradient_accumulation_steps > 1 else auto_prompt_loss_weight(
            accelerator.unwrap_model(model), train_set, collator, accelerator)
    if prompt_weight:
        if train_set is None or not isinstance(train_set.features.get("label"), datasets.ClassLabel):
            raise ValueError(f"{config.data}: prompt_loss_weight needs a ClassLabel 'label' column in the train split "
                             f"(columns: {None if train_set is None else train_set.column_names}); set it to 0")
        collator.prompts = class_prompts(train_set, load_class_words(config.class_words))
    accelerator.print(f"contrastive loss: {'multi-positive by ' + group_by if group_by else 'InfoNCE'}"
                      + (f" + {prompt_weight} x prompt loss over {len(collator.prompts)} classes"
                         if collator.prompts is not None else ""))
    num_epochs = epochs_for(config, steps_per_epoch, bool(prompt_weight))
    if num_epochs != config.num_epochs:
        accelerator.print(f"min_steps {min_steps_for(config, bool(prompt_weight))}: {num_epochs} epochs of "
                          f"{steps_per_epoch} steps instead of {config.num_epochs}")
    total_steps = steps_per_epoch * num_epochs
    warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * total_steps)
    if warmup >= total_steps:
        raise ValueError(f"warm-up of {warmup} steps is not shorter than the run ({total_steps} steps): lower "
                         "warmup_steps / warmup_ratio or train longer")
    scheduler = accelerator.prepare(build_scheduler("cosine", optimizer, warmup, total_steps))
    # one schedule step per optimizer step, also when the caller's Accelerator was made with
    # step_scheduler_with_optimizer=True (which steps it once per process)
    scheduler.step_with_optimizer = False

    state = TrainerState()
    # collapse guard (train/common/collapse_guard.py): loss vs ln(global batch), spread of a fixed probe batch
    candidates = "contrastive candidates" if collator.prompts is None else \
        f"(contrastive candidates x classes^{prompt_weight}: {step_batch * accelerator.num_processes} x " \
        f"{len(collator.prompts)}^{prompt_weight})"
    guard = CollapseGuard(config.collapse_patience, config.collapse_cosine, grace_steps=warmup, warn=accelerator.print,
                          loss_name="loss", candidates_name=candidates)
    if config.resume:
        check_resumed_config(output_dir, config)
        checkpoint = resolve_checkpoint(config.resume, output_dir / CHECKPOINTS)
        state = load_checkpoint(accelerator, checkpoint)
        guard.resume(checkpoint, state.guard)
        accelerator.print(f"resumed from {checkpoint} at step {state.global_step}")
    last_step = total_steps if config.max_steps is None else min(total_steps, config.max_steps)

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(output_dir / CONFIG_FILE)
    run_log = RunLog(accelerator, output_dir, config.to_dict(),
                     (lambda record: record["step"] <= state.global_step) if config.resume else None, state.global_step)
    unwrapped = accelerator.unwrap_model(model)
    losses = _read_log(output_dir)[: state.global_step] if config.resume else []
    progress = tqdm(
        total=last_step, initial=state.global_step, desc="train", disable=not accelerator.is_local_main_process
    )
    samples_per_step = step_batch * accelerator.num_processes
    uniform = uniform_loss(samples_per_step)  # every row is scored against the whole global batch
    if collator.prompts is not None:  # plus the weighted prompt loss, whose uniform value is ln(classes)
        uniform += prompt_weight * uniform_loss(len(collator.prompts))
    probe = training_probe(processor, config.seed, None if stream is not None else train_view,
                           shards if config.streaming else None) if guard.watching else None
    loop = GuardedOptimizer(accelerator, model, optimizer, scheduler, guard, probe,
                            max_grad_norm=config.max_grad_norm)
    tick, steps_since_log = time.perf_counter(), 0

    def stop() -> None:
        """The guard stopped the run: close the logs (no final model is written; the best checkpoint stays)."""
        progress.close()
        if accelerator.is_main_process:
            write_json(output_dir / TRAINING_LOG, {"losses": losses})
        run_log.close()

    def forward_backward(batch) -> StepLoss:
        return StepLoss(contrastive_step(model, batch, accelerator, config.gradient_accumulation_steps, prompt_weight),
                        uniform)

    def after_step(values: list[float]) -> bool:
        """Clamp the temperature, log, roll the epoch over and checkpoint; True ends the epoch's pass."""
        nonlocal tick, steps_since_log
        mean_loss = values[0]
        with torch.no_grad():  # open_clip clamps the temperature to at most 100
            unwrapped.logit_scale.clamp_(0, math.log(100))
        state.batches_in_epoch += 1
        losses.append(mean_loss)
        progress.update(1)
        steps_since_log += 1
        if state.global_step % config.log_every == 0 or state.global_step == last_step:
            elapsed = time.perf_counter() - tick
            logs = {
                "train/loss": mean_loss,
                "train/lr": scheduler.get_last_lr()[0],
                "train/samples_per_second": samples_per_step * steps_since_log / max(elapsed, 1e-9),
                "train/logit_scale": unwrapped.logit_scale.exp().item(),
                **{f"train/{k}": v for k, v in loop.check(state.global_step).items()},  # the guard, every log line
            }
            progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{logs['train/lr']:.2e}")
            run_log.log(logs, state.global_step)
            tick, steps_since_log = time.perf_counter(), 0
        if state.batches_in_epoch == steps_per_epoch:
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
        end_of_epoch = state.batches_in_epoch == 0
        periodic = config.checkpoint_every and state.global_step % config.checkpoint_every == 0
        if periodic or (end_of_epoch and not config.checkpoint_every) or state.global_step == last_step:
            loop.save_checkpoint(output_dir / CHECKPOINTS, state, config.keep_checkpoints)
            if accelerator.is_main_process:
                write_json(output_dir / TRAINING_LOG, {"losses": losses})
        return state.global_step >= last_step or end_of_epoch

    model.train()
    while state.global_step < last_step:
        collator.epoch = state.epoch
        try:
            loop.train_epoch(state, batches.epoch(state.epoch, state.batches_in_epoch), forward_backward, check=False,
                             after_step=after_step)
        except TrainingCollapsedError:
            stop()
            raise
    progress.close()

    model_dir = output_dir / FINAL
    if accelerator.is_main_process:
        save_final_model(accelerator.unwrap_model(model), processor, config, model_dir)
        save_loss_curve(losses, model_dir / LOSS_CURVE, uniform, f"{output_dir.name}: training loss")
    accelerator.wait_for_everyone()
    metrics = {}
    if accelerator.is_main_process:
        if dataset is None and config.eval_split and config.eval_tasks:
            dataset = load_streaming_eval_dataset(config)
        metrics = evaluate_final_model(config, dataset, model_dir)
        if metrics:  # the final evaluation beside the training curves
            run_log.log(flat_numbers(metrics, "eval"), state.global_step)
    if accelerator.is_main_process and config.push_to_hub:
        push_model_dir(model_dir, config.push_to_hub, private=config.hub_private, base_model=config.hub_base_model)
    run_log.close()
    return TrainResult(model_dir=model_dir, state=state, losses=losses, metrics=metrics)


# fields a resumed run may change: where and how it reports, evaluates and keeps checkpoints, and when it stops
RESUME_MAY_CHANGE = frozenset({
    "resume", "overwrite", "max_steps", "report_to", "log_every", "eval_tasks", "eval_batch_size", "eval_split",
    "checkpoint_every", "keep_checkpoints", "num_workers", "push_to_hub", "hub_private", "hub_base_model",
    "collapse_patience", "collapse_cosine",
})


def check_resumed_config(output_dir: Path, config: TrainConfig) -> None:
    """A resumed run continues the saved schedule, data order and model bit for bit, so a change to what shapes them
    (learning rate, batch size, data, seed, ...) would be recorded in train_config.yaml but not applied: refused."""
    saved_file = output_dir / CONFIG_FILE
    if not saved_file.is_file():
        return
    saved, now = type(config).from_yaml(saved_file).to_dict(), config.to_dict()
    changed = sorted(name for name in now if name not in RESUME_MAY_CHANGE and saved.get(name) != now[name])
    if changed:
        details = ", ".join(f"{name}: {saved.get(name)!r} -> {now[name]!r}" for name in changed)
        raise ValueError(f"{saved_file}: --resume continues that run, whose settings differ ({details}); resume with "
                         "the saved settings, or start a new run (--overwrite or another output_dir)")


def training_probe(processor, seed: int, train_view: datasets.Dataset | None, shards: list[str] | None,
                   group_by: str | None = None) -> dict[str, torch.Tensor]:
    """The collapse guard's fixed probe batch: `PROBE_SIZE` training examples spread evenly over the train split (a
    streamed run: the first examples of its first shard), collated without augmentation (one caption each; with
    `group_by`, the loss's positive groups too)."""
    collator = ImageTextCollator(processor, seed, group_by)
    if train_view is not None:
        return collator([train_view[i] for i in probe_indices(len(train_view), PROBE_SIZE)])
    import pyarrow.parquet as pq

    size = min(PROBE_SIZE, pq.read_metadata(shards[0]).num_rows)
    return collator(next(iter(StreamingPairs(shards[:1], size, None, seed, shuffle_buffer=1))))


def auto_prompt_loss_weight(model: torch.nn.Module, train_set: datasets.Dataset | None, collator: ImageTextCollator,
                            accelerator: Accelerator) -> float:
    """`prompt_loss_weight: null`: 1 when the starting model is confidently wrong on the labelled training chips, else 0.

    Confidently wrong: its contrastive loss on the guard's probe batch (`PROBE_SIZE` chips spread over the train split,
    the run's positives) is above `CONFIDENTLY_WRONG` x its uniform value ln(probe size). From there in-batch InfoNCE
    alone falls fastest by giving every chip one embedding and rests at ln B (the quickstart model on OpenSARShip:
    2.0-3.6 x ln B at the start, collapsed by step 80 at every learning rate tried), which the prompt loss does not
    reward; on MSTAR chips (1.0-1.2 x) the prompt loss cost 6 points of linear probe (docs/EXPERIMENTS.md). Caption data
    (no ClassLabel) and streamed data: 0 (and with gradient accumulation, which the prompt loss does not support).
    """
    if train_set is None or not isinstance(train_set.features.get("label"), datasets.ClassLabel):
        return 0.0
    probe = training_probe(collator.processor, collator.seed, training_view(train_set), None, collator.group_by)
    from ..evaluation.encode import eval_mode

    with eval_mode(model), torch.no_grad():
        loss = model(**send_to_device(probe, accelerator.device), return_loss=True).loss.item()
    ratio = loss / uniform_loss(len(probe["input_ids"]))
    weight = 1.0 if ratio > CONFIDENTLY_WRONG else 0.0
    accelerator.print(f"prompt_loss_weight auto: {weight} (the starting model's loss on {len(probe['input_ids'])} "
                      f"training chips is {ratio:.2f} x its uniform value; above {CONFIDENTLY_WRONG}: confidently "
                      "wrong, add the prompt loss)")
    return weight


def min_steps_for(config: TrainConfig, prompt_loss: bool) -> int | None:
    """`prompt_loss_min_steps` when the prompt loss is on and it is set, else `min_steps`."""
    return config.prompt_loss_min_steps if prompt_loss and config.prompt_loss_min_steps else config.min_steps


def epochs_for(config: TrainConfig, steps_per_epoch: int, prompt_loss: bool = False) -> int:
    """`num_epochs`, raised so that the run makes at least `min_steps_for` optimizer steps (a recipe that adapts to
    the data: the LoRA recipe needs ~800 contrastive steps whether the user has 250 chips or 2,500, and ~400 when the
    prompt loss trains the classifier directly)."""
    min_steps = min_steps_for(config, prompt_loss)
    if not min_steps:
        return config.num_epochs
    return max(config.num_epochs, math.ceil(min_steps / steps_per_epoch))


def shared_tokenizer(config: TrainConfig, accelerator: Accelerator, train_set: datasets.Dataset) -> TrainConfig:
    """With `tokenizer: trained`, train the BPE once (main process) into `output_dir/tokenizer` and point the config
    there: every process, and a resumed run, then use the same vocabulary (BPE training breaks ties randomly)."""
    if config.tokenizer != "trained":
        return config
    source = config.init_from or config.model
    if Path(source).is_dir() and not (Path(source) / "processor_config.json").is_file():
        raise ValueError(f"{source}: has no processor (processor_config.json), and a newly trained BPE would not match "
                         "the ids its text tower learned; set tokenizer to the folder of the tokenizer the model was "
                         "trained with (or open_clip if it was)")
    folder = Path(config.output_dir) / TOKENIZER
    if config.resume and not folder.is_dir():
        raise ValueError(f"{folder}: missing; the run's checkpoints were trained with the tokenizer saved there, and a "
                         "new BPE would give other ids (BPE training breaks ties randomly): restore the folder, or "
                         "start a new run (--overwrite or another output_dir)")
    if not config.resume:
        if accelerator.is_main_process:
            captions = (c for caps in train_set["captions"] for c in ([caps] if isinstance(caps, str) else caps))
            build_tokenizer(config, captions).save_pretrained(folder)
        accelerator.wait_for_everyone()
    return dataclasses.replace(config, tokenizer=str(folder))


def save_final_model(model: torch.nn.Module, processor, config: TrainConfig, model_dir: Path) -> None:
    """Atomically write the model folder: full weights, or LoRA adapters (plus merged weights with `merge_lora`).

    A LoRA run without merging writes the adapters (`PeftModel.from_pretrained(base, model_dir)`); with
    `merge_lora` the folder holds the merged full model and the adapters go to `model_dir/adapter`.
    """
    tmp = staging_folder(model_dir)
    try:
        if config.lora and config.merge_lora:
            model.save_pretrained(tmp / "adapter")
            write_model_card(tmp / "adapter", config.to_dict(), {}, dataset_name=config.data)  # not peft's blank one
            model = model.merge_and_unload()
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        config.save_yaml(tmp / CONFIG_FILE)
        replace_folder(tmp, model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate_final_model(config: TrainConfig, dataset: datasets.DatasetDict, model_dir: Path) -> dict[str, float]:
    """Evaluate the saved model on the eval split (`config.eval_tasks`) and write its model card."""
    metrics = {}
    if config.eval_tasks and config.eval_split:
        model, processor = load_trained_model(model_dir)
        metrics = evaluate_model(
            model, processor, dataset, config.train_split, config.eval_split, config.eval_tasks, model_dir,
            config.eval_batch_size, load_class_words(config.class_words), collapse_cosine=config.collapse_cosine,
        )
    write_model_card(model_dir, config.to_dict(), metrics, dataset_name=config.data)
    return metrics


def _read_log(output_dir: Path) -> list[float]:
    path = output_dir / TRAINING_LOG
    return read_json(path)["losses"] if path.is_file() else []
