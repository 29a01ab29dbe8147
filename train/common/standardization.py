"""A run's pixel standardisation on its SAR image processor (both families): set it, say what the run uses, and
record what the model is trained on (`pixel_reference`), so that a later fine-tuning run can match it."""

from __future__ import annotations

from modeling_sarclip import SarclipImageProcessor
from modeling_sarclip.image_processing_sarclip import STANDARDIZATIONS, reference_statistics


AUTO = "auto"  # run-config only (SARCLIP fine-tuning): chosen by measurement, `train.sarclip.model_setup`


def check_standardize(value, allow_auto: bool = False) -> None:
    """The run-config rule of `standardize` (both families): one of STANDARDIZATIONS, or null; `auto` where the
    trainer can measure the choice (`allow_auto`)."""
    allowed = STANDARDIZATIONS + ((AUTO,) if allow_auto else ())
    if value is not None and value not in allowed:
        raise ValueError(f"standardize must be one of {allowed} or null, got {value!r}")


def apply_standardization(image_processor: SarclipImageProcessor, mode: str | None, images=None,
                          source: str | None = None) -> None:
    """Set the processor's standardisation to `mode` (None: keep it); `source` names the model folder the processor
    came from (a fine-tuning run), None for a new model.

    per_image on a base trained without it maps each chip to the base's `pixel_reference` (mean, per-image std of
    its training inputs): chips far from the base's training range (dark MSTAR chips for a model trained on brighter
    ones) otherwise all get one embedding and the fine-tuning collapses (docs/RESULTS.md, LoRA on MSTAR). A processor
    without a `pixel_reference` gets one measured on `images` (the train images, as the model will see them).
    """
    if mode is not None and mode != image_processor.standardization:
        target = (0.0, 1.0)
        if source and mode == "per_image":
            if image_processor.pixel_reference is not None:
                target = image_processor.pixel_reference
                print(f"standardize: per_image, each chip mapped to {source}'s training inputs (mean {target[0]}, "
                      f"std {target[1]}: its pixel_reference)")
            else:
                print(f"standardize: per_image; {source} recorded no pixel_reference, so chips are mapped to mean 0, "
                      "std 1, which may be far from what it was trained on")
        elif source:
            print(f"standardize: {mode} replaces {source}'s processor setting ({image_processor.standardization})")
        image_processor.set_standardization(mode, images, target=target)
    if image_processor.standardization == "dataset":
        print(f"standardize: dataset, image_mean {image_processor.image_mean}, image_std {image_processor.image_std}")
    elif image_processor.standardization == "per_image" and not source:
        print("standardize: per_image (each chip by its own mean and standard deviation)")
    if image_processor.pixel_reference is None and images is not None:
        image_processor.pixel_reference = reference_statistics(image_processor, images)
