"""Captions for a classification label: 5 of the 10 general/complex templates (SARCLIP-1M, Table I: 5 per image)."""

from __future__ import annotations

import random

from .templates import CaptionTemplates, load_templates

CAPTIONS_PER_IMAGE = 5


def item_rng(seed: int, key: str) -> random.Random:
    """A generator that depends only on (seed, item key), so captions do not change with build order."""
    return random.Random(f"{seed}/{key}")


def classification_captions(
    class_phrase: str, key: str, seed: int = 0, templates: CaptionTemplates | None = None,
    num: int = CAPTIONS_PER_IMAGE,
) -> list[str]:
    """``num`` captions from distinct templates, drawn without replacement with a generator seeded by (seed, key).

    The paper does not say how its 5 captions per image are drawn from the 10 templates; we draw distinct ones.
    """
    templates = templates or load_templates()
    chosen = item_rng(seed, key).sample(templates.classification, num)
    return [template.format_map({"class": class_phrase}) for template in chosen]
