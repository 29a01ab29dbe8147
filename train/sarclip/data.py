"""Image-text training data: load a `DatasetDict`, order it per epoch and turn examples into model batches."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import datasets
import torch

from dataset_scripts.captions.class_names import label_class_words, load_class_words
from dataset_scripts.captions.templates import load_templates
from dataset_scripts.loading import load_image_text_data
from dataset_scripts.splits import warn_shared_images, with_held_out_split
from modeling_sarclip.sar_raster_sarclip import SarRasterError

from .augment import SarAugment
from .config import TrainConfig


def load_image_text_dataset(config: TrainConfig) -> datasets.DatasetDict:
    """`config.data` (`dataset_scripts.loading.load_image_text_data`) -> DatasetDict whose splits have an `image`
    column and a `captions` (list of str) column (made from the labels where the data has labels only), with a
    held-out evaluation split when the data has none."""
    from dataset_scripts import synthetic_dataset

    def synthetic() -> datasets.DatasetDict:
        return synthetic_dataset(num_train=config.synthetic_num_train, num_test=config.synthetic_num_test,
                                 image_size=config.synthetic_image_size, seed=config.seed)

    dataset = load_image_text_data(config.data, synthetic, config.csv_image_key, config.csv_caption_key,
                                   config.allow_outside_data)
    if config.train_split not in dataset:
        raise ValueError(f"{config.data}: no split {config.train_split!r} (splits: {list(dataset)})")
    if config.eval_split and config.eval_split not in dataset:
        if set(dataset) != {config.train_split}:  # the data has evaluation splits: the name is probably a typo
            raise ValueError(f"{config.data}: no split {config.eval_split!r} (splits: {list(dataset)}); set "
                             "eval_split to one of them")
        dataset = with_held_out_split(dataset, config.train_split, config.eval_split, config.held_out_fraction,
                                      config.seed, config.data)
    if config.eval_split:
        warn_shared_images(dataset[config.train_split], dataset[config.eval_split], config.train_split,
                           config.eval_split, config.data)
    return with_captions_column(dataset, config.data, load_class_words(config.class_words))


def with_captions_column(dataset: datasets.DatasetDict, source: str,
                         words: dict[str, str] | None = None) -> datasets.DatasetDict:
    """Every split gets a `captions` list column: a single `caption` string becomes a one-element list; a split
    with a `ClassLabel` `label` and no caption gets the SARCLIP-1M classification templates filled with its class
    words (`class_words`: the user's `words` mapping, class_names.yaml, or the class name); training draws one per
    image and epoch."""
    for split, ds in dataset.items():
        if "image" not in ds.column_names:
            raise ValueError(f"{source}: split {split!r} has no 'image' column (columns: {ds.column_names})")
        if "captions" in ds.column_names:
            continue
        if "caption" in ds.column_names:
            dataset[split] = ds.map(lambda ex: {"captions": [ex["caption"]]}, remove_columns=["caption"])
            continue
        label = ds.features.get("label")
        if not isinstance(label, datasets.ClassLabel):
            raise ValueError(f"{source}: split {split!r} has no 'captions', 'caption' or ClassLabel 'label' column "
                             f"(columns: {ds.column_names})")
        per_class = class_prompts(ds, words)
        dataset[split] = ds.add_column("captions", [per_class[i] for i in ds["label"]])
    return dataset


def class_prompts(split: datasets.Dataset, words: dict[str, str] | None = None) -> list[list[str]]:
    """Per class of the split's ClassLabel `label`, the SARCLIP-1M classification templates filled with its class
    words (`label_class_words`): the captions of labelled chips, and the prompts of `prompt_loss_weight`."""
    templates = load_templates().classification
    return [[t.format_map({"class": w}) for t in templates] for w in label_class_words(split, words)]


class ImageTextCollator:
    """Examples -> `{"pixel_values", "input_ids"[, "group_ids"][, "class_input_ids", "labels"]}`; one of each image's
    captions, chosen by (seed, epoch, index); with `prompts` (per class, its prompt texts) also one prompt per class
    and the examples' labels, for the prompt loss.

    The choice does not use the global RNG, so a resumed run sees the same captions as an uninterrupted one. `epoch`
    lives in shared memory: setting it in the training process also reaches persistent DataLoader workers.
    Examples must carry `__index__` (added by `training_view`). With `group_by` ("label" or "caption") the batch
    also holds `group_ids` for the multi-positive loss: the label, or a stable hash of the caption string (the same
    on every process), so pairs of one class or one caption are positives for each other.
    """

    def __init__(self, processor, seed: int, group_by: str | None = None, augment: SarAugment | None = None,
                 prompts: list[list[str]] | None = None):
        self.processor = processor
        self.seed = seed
        self.group_by = group_by
        self.augment = augment
        self.prompts = prompts
        self._epoch = torch.zeros((), dtype=torch.long).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.fill_(value)

    def caption_for(self, example: dict) -> str:
        captions = example["captions"]
        if isinstance(captions, str):
            return captions
        if not captions:
            raise ValueError(f"example {example['__index__']} has no caption")
        return random.Random(f"{self.seed}/{self.epoch}/{example['__index__']}").choice(captions)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        try:
            return self._collate(examples)
        except SarRasterError as err:
            raise self._named_error(examples) or err from err

    def _named_error(self, examples: list[dict]) -> SarRasterError | None:
        """The error of the first example whose image the processor refuses, naming the example (its row, or its
        position in a streamed epoch, and the file name stored with it): the processor only knows its place in the
        batch. Images of image folders and tables were checked up front; those of dataset folders are met here."""
        for example in examples:
            try:
                self.processor.image_processor([example["image"]])
            except SarRasterError as err:
                stored = example.get("__source__")
                where = f"training example {example['__index__']}" + (f" ({stored})" if stored else "")
                return SarRasterError(where, f"{err.problem}; fix or remove this image and run again (the last "
                                             "complete checkpoint is intact)")
        return None

    def _collate(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        texts = [self.caption_for(example) for example in examples]
        images = [example["image"] for example in examples]
        if self.augment is None or not self.augment.names:
            batch = self.processor(images=images, text=texts)
            pixel_values = batch["pixel_values"]
        else:  # crop (and flip) first, then standardise what the model sees
            image_processor = self.processor.image_processor
            margin = self.augment.margin(image_processor.size)
            batch = self.processor(images=images, text=texts, margin=margin, standardize=False)
            pixel_values = image_processor.standardize(self.augment(
                batch["pixel_values"], self.epoch, [example["__index__"] for example in examples], margin))
        out = {"pixel_values": pixel_values, "input_ids": batch["input_ids"]}
        if self.prompts is not None:  # one prompt per class, drawn per batch like the captions
            draw = random.Random(f"{self.seed}/{self.epoch}/prompts/{examples[0]['__index__']}")
            out["class_input_ids"] = self.processor(text=[draw.choice(p) for p in self.prompts])["input_ids"]
            out["labels"] = torch.tensor([example["label"] for example in examples])
        if self.group_by == "label":
            out["group_ids"] = torch.tensor([example["label"] for example in examples])
        elif self.group_by == "caption":
            out["group_ids"] = torch.tensor([caption_id(text) for text in texts])
        return out


def caption_id(text: str) -> int:
    """A stable 63-bit id of a caption string (equal strings, equal ids, on every process and run)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") >> 1


def positive_grouping(split: datasets.Dataset | None, setting: str, features: datasets.Features | None = None
                      ) -> str | None:
    """What the multi-positive loss groups by, for `multi_positive` = "auto" | "label" | "caption" | "off".

    auto: "caption" when a caption string is carried by more than one image (template captions of one class: the
    copies are not penalised as negatives), else None (plain InfoNCE, which the multi-positive loss equals when all
    captions differ). A streamed `split` (None; its `features` given) cannot be scanned: auto is then "caption", which
    costs nothing when captions are distinct. "label" (pairs of one class are positives) is opt-in: it helped the
    quickstart and the OpenSARShip LoRA recipe but hurt MSTAR from scratch in our runs (docs/RESULTS.md).
    """
    features = split.features if split is not None else features
    if setting == "label" and not isinstance(features.get("label"), datasets.ClassLabel):
        raise ValueError("multi_positive: label needs a ClassLabel 'label' column; the training data has none (use "
                         "auto or caption)")
    if setting == "off":
        return None
    if setting != "auto":
        return setting
    if split is None:
        return "caption"
    seen: set[str] = set()
    for captions in split["captions"]:
        distinct = set([captions] if isinstance(captions, str) else captions)
        if seen & distinct:
            return "caption"
        seen |= distinct
    return None


def load_streaming_eval_dataset(config: TrainConfig) -> datasets.DatasetDict:
    """The splits evaluation reads after a streamed run (`streaming: true`): the eval split, plus the train split
    when the linear probe is asked for (it encodes the whole train split: leave linear_probe out of eval_tasks for
    corpora of SARCLIP-1M size), loaded from their parquet shards."""
    from .streaming import parquet_shards

    splits = [config.eval_split] + ([config.train_split] if "linear_probe" in config.eval_tasks else [])
    dataset = datasets.load_dataset("parquet", data_files={s: parquet_shards(config.data, s) for s in splits})
    return with_captions_column(dataset, config.data, load_class_words(config.class_words))


def training_view(dataset: datasets.Dataset) -> datasets.Dataset:
    """Only the columns training reads, plus the row number as `__index__` (used to pick captions)."""
    dataset = dataset.select_columns([c for c in ("image", "captions", "label") if c in dataset.column_names])
    return dataset.add_column("__index__", list(range(len(dataset))))


def eval_data_config(model_dir: Path, data: str, seed: int | None, allow_outside_data: bool = False,
                     class_words: str | None = None) -> TrainConfig:
    """What `eval` loads: `data` with the held-out split and class words of the run that wrote `model_dir` (its
    `train_config.yaml`) when that run trained on the same data, so that a held-out split holds exactly the chips the
    run never saw; `seed` and `class_words` (when given) override the run's. Images outside the data's folder are read
    when `allow_outside_data` is given or the run allowed them."""
    saved = Path(model_dir) / "train_config.yaml"
    run = TrainConfig.from_yaml(saved) if saved.is_file() else None
    if run is not None and _same_data(run.data, data):
        print(f"{data}: held-out split and class words of the run ({saved}: seed {run.seed if seed is None else seed}, "
              f"held_out_fraction {run.held_out_fraction})")
        return TrainConfig(data=data, seed=run.seed if seed is None else seed, held_out_fraction=run.held_out_fraction,
                           class_words=class_words or run.class_words, csv_image_key=run.csv_image_key,
                           csv_caption_key=run.csv_caption_key, synthetic_num_train=run.synthetic_num_train,
                           synthetic_num_test=run.synthetic_num_test, synthetic_image_size=run.synthetic_image_size,
                           allow_outside_data=allow_outside_data or run.allow_outside_data)
    return TrainConfig(data=data, seed=0 if seed is None else seed, allow_outside_data=allow_outside_data,
                       class_words=class_words)


def _same_data(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())
