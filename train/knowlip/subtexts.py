"""SCIO's sub-texts (paper 3.4: each image's text is a list of sub-texts p_1..p_n) from any image-text dataset.

The rule, first match wins (`scio_subtexts`):
1. a list-of-strings column named `column` (default `subtexts`): as is (synthetic set, SCIO text versions);
2. the 8 SAR-GEOVL HCoT field columns (`dataset_scripts.geovl.hcot.SUBTEXT_FIELDS`, written by the captioning
   pipeline and by `python -m dataset_scripts.geovl describe`): those 8 fields in that order, the paper's 8 sub-texts;
3. `captions` (a list per image, dataset builds and caption tables) or `caption` (a string): one caption is one
   sub-text (our choice: a caption is the smallest unit a caption source vouches for; splitting it into sentences
   would screen half-statements);
4. a ClassLabel `label` and nothing else (image folders, label CSVs): the 8 HCoT fields composed from the label and
   the image without an LLM (`dataset_scripts.geovl.label_captions`).
Empty or blank sub-texts are dropped; an image left with none is an error naming its row.
"""

from __future__ import annotations

import datasets

from dataset_scripts.geovl.hcot import SUBTEXT_FIELDS


def scio_subtexts(dataset: datasets.Dataset, column: str = "subtexts") -> tuple[list[list[str]], str]:
    """Per image its sub-texts, and which rule gave them ("subtexts", "hcot_fields", "captions", "label")."""
    names = dataset.column_names
    if column in names:
        texts, rule = [list(text) for text in dataset[column]], "subtexts"
    elif set(SUBTEXT_FIELDS) <= set(names):
        fields = [dataset[name] for name in SUBTEXT_FIELDS]
        texts, rule = [list(parts) for parts in zip(*fields)], "hcot_fields"
    elif "captions" in names:
        texts, rule = [list(captions) for captions in dataset["captions"]], "captions"
    elif "caption" in names:
        texts, rule = [[caption] for caption in dataset["caption"]], "captions"
    elif isinstance(dataset.features.get("label"), datasets.ClassLabel):
        from dataset_scripts.geovl.label_captions import describe_split

        described = describe_split(dataset)
        return scio_subtexts(described.select_columns(list(SUBTEXT_FIELDS)), column)[0], "label"
    else:
        raise ValueError(f"no sub-texts: SCIO needs a {column!r} column, the 8 HCoT field columns "
                         f"{list(SUBTEXT_FIELDS)}, `captions`, `caption` or a ClassLabel `label` (columns: {names})")
    cleaned = []
    for row, text in enumerate(texts):
        if not all(isinstance(part, str) or part is None for part in text):
            raise ValueError(f"row {row}: sub-texts must be strings, got {text!r}")
        parts = [part.strip() for part in text if part and part.strip()]
        if not parts:
            raise ValueError(f"row {row} has no non-empty sub-text (rule {rule!r})")
        cleaned.append(parts)
    return cleaned, rule


__all__ = ["scio_subtexts"]
