"""The one writer of dataset cards (a dataset folder's README.md): YAML metadata through `huggingface_hub`'s
`DatasetCardData` (license, tags, task categories, language, size, and for builds the `configs:` data files and the
`dataset_info` features and splits), then `# title` and the markdown body. Builders (`export.write_dataset_card`), the
synthetic corpus, the SAR-GEOVL captions, the VQA sets and the KnowLIP chain's tiles all write theirs here."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

SAR_TAGS = ("sar", "synthetic-aperture-radar", "remote-sensing")


def size_category(count: int) -> str:
    """The Hub's size category of `count` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return name
    return "1M<n<10M"


def dataset_card(title: str, body: str, task_categories: Sequence[str], *, tags: Sequence[str] = (),
                 license: str | None = None, rows: int | None = None, splits: Sequence[str] | None = None,
                 info: datasets.DatasetInfo | None = None) -> DatasetCard:
    """The card (`str(card)` is its text; `card.save(path)` writes it). `splits`: a `configs:` block naming each split's shards `data/<split>-*` (None: none, and
    `load_dataset` finds the standard shard names itself); `info`: the features and split sizes."""
    card_data = DatasetCardData(license=license, pretty_name=title, tags=[*SAR_TAGS, *tags],
                                task_categories=list(task_categories), language=["en"],
                                size_categories=None if rows is None else [size_category(rows)])
    if splits:
        MetadataConfigs({"default": {"data_files": [{"split": split, "path": f"data/{split}-*"} for split in splits]}}
                        ).to_dataset_card_data(card_data)
    if info is not None:
        DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n# {title}\n\n{body}")


__all__ = ["SAR_TAGS", "dataset_card", "size_category"]
