"""Speed levers that leave the math alone: DataLoader settings that keep a GPU fed, opt-in `torch.compile`,
channels-last ResNet towers, a frozen compiled image tower for embedding archives (the fused AdamW kernel is in
`train.common.optim`). The trainer and
`python -m train index` call them; `bench/bench_sarclip_vs_open_clip.py` and `bench/bench_inference_vs_open_clip.py`
measure them."""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

GPU_WORKERS_PER_PROCESS = 8
PREFETCH_FACTOR = 4


def cores_per_process() -> int:
    """CPU cores this process may use, divided among the processes of this machine (`LOCAL_WORLD_SIZE`, set by
    torchrun / accelerate launch)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def dataloader_kwargs(num_workers: int | None = None, device: torch.device | str | None = None) -> dict:
    """`DataLoader` keyword arguments.

    On a GPU: `num_workers` (default: min(8, this process's share of the cores, minus one for the training loop)),
    pinned memory (asynchronous host-to-device copies), persistent workers (no re-spawn per epoch) and a prefetch
    factor of 4. On CPU: `num_workers` as given (default 0: decoding in the training process leaves every core to
    the model's kernels, which is faster on a small CPU).
    """
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        return {"num_workers": num_workers or 0}
    workers = num_workers if num_workers is not None else min(GPU_WORKERS_PER_PROCESS, cores_per_process() - 1)
    if workers <= 0:
        return {"num_workers": 0, "pin_memory": True}
    return {"num_workers": workers, "pin_memory": True, "persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR}


def maybe_compile(model: nn.Module, enabled: bool, **compile_kwargs) -> nn.Module:
    """`torch.compile` the model in place (`nn.Module.compile`: the module keeps its class, state-dict keys and
    `save_pretrained`) when `enabled`; both towers and the loss trace without graph breaks. Text lengths vary per
    batch: after the second length the compiled graph is shape-generic (no recompile per length)."""
    if enabled:
        model.compile(**compile_kwargs)
    return model


def compile_image_tower_for_inference(model: nn.Module) -> nn.Module:
    """`torch.compile` the image tower (`model.vision_model`) for embedding only, in place (`compile_frozen`).
    ViT-B-32 on a 2-core CPU: about 1.1x our eager tower, 1.15-1.24x open_clip's eager `encode_image`
    (docs/RESULTS.md)."""
    compile_frozen(model.vision_model)
    return model


def compile_frozen(module: nn.Module) -> nn.Module:
    """`torch.compile` a module for gradient-free calls, in place: inductor's `freezing` folds its weights into the
    graph as constants (prepacked oneDNN matrix products on CPU), one graph per input shape (`dynamic=False`; a shape
    compiles in about 15 s for ViT-B-32 on CPU). The weights must not change afterwards."""
    from torch._inductor import config as inductor_config

    module.compile(dynamic=False)  # sets `module._compiled_call_impl`, which `module(...)` calls
    compiled = module._compiled_call_impl

    def call_frozen(*args, **kwargs):
        # dynamo (which lifts the weights as graph inputs or keeps them as constants) and inductor both read the flag
        # when a shape compiles, so it has to be set around every call; `compile(options=...)` reaches inductor only
        with inductor_config.patch(freezing=True):
            return compiled(*args, **kwargs)

    module._compiled_call_impl = call_frozen
    return module


def can_compile() -> bool:
    """Whether inductor finds a C++ compiler for its CPU kernels (`CXX`, else g++ or clang++)."""
    return any(shutil.which(name) for name in (os.environ.get("CXX"), "g++", "clang++", "c++") if name)


def channels_last(model: nn.Module) -> nn.Module:
    """Channels-last weights for a ResNet image tower (faster cuDNN / oneDNN convolutions; ViT towers are left
    as they are). The convolutions then return channels-last activations whatever the input layout."""
    vision_config = getattr(getattr(model, "config", None), "vision_config", None)
    if vision_config is not None and vision_config.is_resnet:
        model.vision_model.to(memory_format=torch.channels_last)
    return model


__all__ = ["can_compile", "channels_last", "compile_frozen", "compile_image_tower_for_inference",
           "cores_per_process", "dataloader_kwargs", "maybe_compile"]
