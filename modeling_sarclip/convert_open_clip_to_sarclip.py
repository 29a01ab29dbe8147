"""Convert an open_clip checkpoint (official SARCLIP, RemoteCLIP, LAION/OpenAI open_clip) into a SARCLIP folder.

    sarclip-convert --checkpoint SARCLIP_ViT-B-32.pt --model ViT-B-32 --output_dir sarclip-vit-b-32
    python -m modeling_sarclip.convert_open_clip_to_sarclip --checkpoint ckpt.safetensors --model RN50 --output_dir out

The output folder is Hub-ready: config.json, model.safetensors, the model code (for trust_remote_code), the processor
(SAR image processor + CLIP BPE tokenizer) and a model card. Every checkpoint key must map to a model weight and every
model weight must be filled, or the conversion fails naming the keys.
"""

import json
import re
import sys
from pathlib import Path

import torch

from sar_utils.atomic import atomic_folder
from sar_utils.command_line import ArgumentParser, run_cli
from sar_utils.hub import push_folder

from .configuration_sarclip import SarclipConfig
from .image_processing_sarclip import SarclipImageProcessor
from .modeling_sarclip import SarclipModel
from .processing_sarclip import SarclipProcessor
from .tokenization_sarclip import SarclipTokenizer

# Buffers some open_clip versions save that the model rebuilds itself.
IGNORED_KEYS = {"attn_mask"}
# Parameters open_clip stores as `x @ W` matrices; our nn.Linear keeps the transpose.
TRANSPOSED = {"visual.proj", "text_projection"}

BLOCK_RULES = [
    (r"ln_1\.", "layer_norm1."),
    (r"attn\.in_proj_(weight|bias)$", r"self_attn.qkv.\1"),
    (r"attn\.out_proj\.", "self_attn.out_proj."),
    (r"ln_2\.", "layer_norm2."),
    (r"mlp\.c_fc\.", "mlp.fc1."),
    (r"mlp\.c_proj\.", "mlp.fc2."),
]
RULES = [
    (r"^visual\.conv1\.weight$", "vision_model.patch_embedding.weight", "vit"),
    (r"^visual\.class_embedding$", "vision_model.class_embedding", "vit"),
    (r"^visual\.positional_embedding$", "vision_model.position_embedding", "vit"),
    (r"^visual\.ln_pre\.", "vision_model.pre_layernorm.", "vit"),
    (r"^visual\.transformer\.resblocks\.(\d+)\.", r"vision_model.encoder.layers.\1.", "vit"),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm.", "vit"),
    (r"^visual\.proj$", "vision_model.projection.weight", "vit"),
    (r"^visual\.(conv[123]|bn[123])\.", r"vision_model.\1.", "resnet"),
    (r"^visual\.layer([1-4])\.(\d+)\.downsample\.0\.", r"vision_model.stages.{\1}.\2.downsample.1.", "resnet"),
    (r"^visual\.layer([1-4])\.(\d+)\.downsample\.1\.", r"vision_model.stages.{\1}.\2.downsample.2.", "resnet"),
    (r"^visual\.layer([1-4])\.(\d+)\.", r"vision_model.stages.{\1}.\2.", "resnet"),
    (r"^visual\.attnpool\.positional_embedding$", "vision_model.attnpool.position_embedding", "resnet"),
    (r"^visual\.attnpool\.", "vision_model.attnpool.", "resnet"),
    (r"^token_embedding\.", "text_model.token_embedding.", None),
    (r"^positional_embedding$", "text_model.position_embedding", None),
    (r"^transformer\.resblocks\.(\d+)\.", r"text_model.encoder.layers.\1.", None),
    (r"^ln_final\.", "text_model.final_layer_norm.", None),
    (r"^text_projection$", "text_model.projection.weight", None),
    (r"^logit_scale$", "logit_scale", None),
]


def load_open_clip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors or .pt/.bin checkpoint (weights only), unwrapping `state_dict` and DDP `module.` prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (optionally under a 'state_dict' key)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _rename(key: str, tower: str) -> str | None:
    for pattern, replacement, rule_tower in RULES:
        if rule_tower not in (None, tower) or not re.search(pattern, key):
            continue
        new = re.sub(pattern, replacement, key)
        new = re.sub(r"\{(\d)\}", lambda m: str(int(m.group(1)) - 1), new)  # open_clip layer1..4 -> stages.0..3
        block = re.match(r"^(.*\.encoder\.layers\.\d+\.)(.*)$", new)
        if block:
            prefix, suffix = block.groups()
            for block_pattern, block_replacement in BLOCK_RULES:
                suffix = re.sub("^" + block_pattern, block_replacement, suffix)
            new = prefix + suffix
        return new
    return None


def convert_state_dict(state: dict[str, torch.Tensor], config: SarclipConfig) -> dict[str, torch.Tensor]:
    """open_clip parameter names/layouts -> SarclipModel's. Raises on any key it cannot place."""
    tower = "resnet" if config.vision_config.is_resnet else "vit"
    converted, unknown = {}, []
    for key, value in state.items():
        if key in IGNORED_KEYS:
            continue
        new_key = _rename(key, tower)
        if new_key is None:
            unknown.append(key)
            continue
        converted[new_key] = value.t().contiguous() if key in TRANSPOSED else value
    if unknown:
        raise ValueError(
            f"checkpoint keys not understood for a {tower} SARCLIP model (wrong --model?): {sorted(unknown)[:10]}"
        )
    return converted


def convert_checkpoint(checkpoint: str | Path, config: SarclipConfig) -> SarclipModel:
    """Load an open_clip checkpoint into a SarclipModel, strictly (missing or extra weights and shape mismatches raise)."""
    state = convert_state_dict(load_open_clip_state_dict(checkpoint), config)
    model = SarclipModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{checkpoint}: does not match the {config.vision_config.is_resnet and 'ResNet' or 'ViT'} config"
            f" - missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatches {mismatched[:5]}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def convert(
    checkpoint: str | Path,
    model_name: str | None = None,
    output_dir: str | Path = "sarclip-converted",
    open_clip_config: str | Path | None = None,
    bpe_path: str | Path | None = None,
    push_to_hub: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Hub-ready SARCLIP folder from an open_clip checkpoint (atomically: it appears only when complete);
    optionally push it to `push_to_hub` (a repo id). A folder that is not empty (a trained model, with its results) is
    replaced only with `overwrite`, and never one that holds the checkpoint."""
    from model_cards import sarclip_model_card

    output_dir = Path(output_dir)
    if Path(checkpoint).resolve().is_relative_to(output_dir.resolve()):
        raise ValueError(f"{output_dir}: holds the checkpoint {checkpoint}, which replacing it would delete; choose "
                         "another --output_dir")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir}: exists and is not empty; pass --overwrite to replace it (it is replaced "
                              "only when the new folder is complete), or choose another --output_dir")

    if open_clip_config is not None:
        config = SarclipConfig.from_open_clip_config(json.loads(Path(open_clip_config).read_text()))
        architecture = Path(open_clip_config).stem
    elif model_name is not None:
        config = SarclipConfig.from_preset(model_name)
        architecture = model_name
    else:
        raise ValueError("give the architecture: --model NAME or --open_clip_config JSON")
    model = convert_checkpoint(checkpoint, config)
    tokenizer = SarclipTokenizer.from_bpe_file(bpe_path)
    processor = SarclipProcessor(SarclipImageProcessor(size=config.vision_config.image_size), tokenizer)
    with atomic_folder(output_dir) as staging:  # a failed conversion never leaves (or replaces with) half a folder
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        card = sarclip_model_card(architecture=architecture,
                                  source=f"converted from the open_clip checkpoint `{Path(checkpoint).name}`")
        card.save(staging / "README.md")
    if push_to_hub:
        push_folder(output_dir, push_to_hub, commit_message="Add SARCLIP model")
    return output_dir


def main(argv=None) -> int:
    """`sarclip-convert`: a bad checkpoint, config or path (or no network for the push) is `error: ...`, exit 2."""
    return run_cli(_cli, argv)


def _cli(argv) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, help=".safetensors, .pt or .bin open_clip checkpoint")
    arch = parser.add_mutually_exclusive_group(required=True)
    arch.add_argument("--model", help="open_clip architecture: ViT-B-32, ViT-B-16, ViT-L-14, RN50, RN101")
    arch.add_argument("--open_clip_config", help="open_clip model-config JSON (embed_dim, vision_cfg, text_cfg)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--bpe", help="bpe_simple_vocab_16e6.txt.gz (default: the one open_clip ships)")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="also upload the folder to this Hub repo")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output_dir (when the new folder is complete); default: refuse it")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (default: off)")
    args = parser.parse_args(argv)
    out = convert(args.checkpoint, args.model, args.output_dir, args.open_clip_config, args.bpe, args.push_to_hub,
                  args.overwrite)
    print(f"SARCLIP model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
