"""SARCLIP ViT folder <-> native transformers `CLIPModel` folder (no remote code, no extra package).

    python -m modeling_sarclip.convert_sarclip_to_clip to-clip sarclip-vit-b-32 clip-export [--push_to_hub org/name]
    python -m modeling_sarclip.convert_sarclip_to_clip from-clip clip-vit-b-32 sarclip-init   # start SARCLIP transfer

to-clip writes config.json (model_type clip), model.safetensors, a `CLIPProcessor` (a `CLIPTokenizer` with SARCLIP's
vocabulary, a `CLIPImageProcessor` with the 8-bit SAR recipe) and a model card. from-clip writes a SARCLIP folder
(`SarclipModel`, `SarclipProcessor` with the SAR image processor). Weights map one to one (only the fused qkv is split
or joined), so embeddings agree to float rounding. Nothing is written unless the whole folder is: it is built in a
temporary folder beside the output and moved into place; an existing output is replaced only with --overwrite.

What the native export cannot do (use `SarclipProcessor` / `SarclipImageProcessor` for it):
- The `CLIPImageProcessor` expresses only the 8-bit recipe: x / 255, then (x - 0.5) / 0.5 (mean = std = 0.5), a grey
  chip copied to 3 channels, bicubic shortest-edge resize and centre crop. Float dB rasters (single band or dual-pol
  VV/VH), 16-bit amplitude, complex SLC and 2-band rasters have no native equivalent.
- Chips already `image_size` x `image_size` give identical pixels. Other sizes are resized by both (antialiased bicubic,
  centre crop) but resampled differently (8-bit intermediate, no clamp, long edge truncated rather than rounded: a
  one-pixel shift for some non-square chips), so their pixels and embeddings differ slightly.
- The native tokenizer lacks SARCLIP's ftfy / HTML-unescape cleaning (same ids for ordinary text) and pads with
  <|endoftext|> rather than id 0; transformers' CLIP pools at the first <|endoftext|>, so embeddings are the same.
- ModifiedResNet towers (RN50, RN101) are refused: transformers has no native ModifiedResNet CLIP class.
"""

import json
import re
import shutil
import sys
from pathlib import Path

import torch
from huggingface_hub import metadata_load
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
from transformers.image_utils import PILImageResampling

from sar_utils.atomic import replace_folder, staging_folder
from sar_utils.command_line import ArgumentParser, run_cli
from sar_utils.hub import push_folder

from .configuration_sarclip import SarclipConfig
from .image_processing_sarclip import SarclipImageProcessor
from .modeling_sarclip import SarclipModel
from .processing_sarclip import SarclipProcessor
from .tokenization_sarclip import SarclipTokenizer

# SarclipModel key -> CLIPModel key outside the encoder blocks; block keys are equal except the fused qkv.
KEY_MAP = {
    "vision_model.patch_embedding.weight": "vision_model.embeddings.patch_embedding.weight",
    "vision_model.class_embedding": "vision_model.embeddings.class_embedding",
    "vision_model.position_embedding": "vision_model.embeddings.position_embedding.weight",
    "vision_model.pre_layernorm.weight": "vision_model.pre_layrnorm.weight",
    "vision_model.pre_layernorm.bias": "vision_model.pre_layrnorm.bias",
    "vision_model.projection.weight": "visual_projection.weight",
    "text_model.token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "text_model.position_embedding": "text_model.embeddings.position_embedding.weight",
    "text_model.projection.weight": "text_projection.weight",
}
FUSED_QKV = re.compile(r"^(.*\.self_attn\.)qkv\.(weight|bias)$")
SPLIT_QKV = re.compile(r"^(.*\.self_attn\.)([qkv])_proj\.(weight|bias)$")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
class ExportError(ValueError):
    """A user error (bad or unsupported source folder, existing output, mismatched tokenizer); the CLI prints it."""


def sarclip_state_to_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SarclipModel (ViT) weights -> CLIPModel weights: renames, and the fused qkv split into q/k/v projections."""
    converted = {}
    for key, value in state.items():
        fused = FUSED_QKV.match(key)
        if fused:  # open_clip / SARCLIP order the fused rows q, k, v
            for name, part in zip("qkv", value.chunk(3, dim=0)):
                converted[f"{fused[1]}{name}_proj.{fused[2]}"] = part.contiguous()
        else:
            converted[KEY_MAP.get(key, key)] = value
    return converted


def clip_state_to_sarclip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIPModel weights -> SarclipModel weights (the inverse of `sarclip_state_to_clip`)."""
    inverse = {clip_key: key for key, clip_key in KEY_MAP.items()}
    converted = {}
    for key, value in state.items():
        split = SPLIT_QKV.match(key)
        if split is None:
            converted[inverse.get(key, key)] = value
        elif split[2] == "q":
            prefix, kind = split[1], split[3]
            converted[f"{prefix}qkv.{kind}"] = torch.cat([state[f"{prefix}{n}_proj.{kind}"] for n in "qkv"])
    return converted


def clip_config_from_sarclip(config: SarclipConfig, tokenizer) -> CLIPConfig:
    vision, text = config.vision_config, config.text_config
    return CLIPConfig(
        text_config=dict(
            vocab_size=text.vocab_size, hidden_size=text.width, intermediate_size=int(text.width * text.mlp_ratio),
            num_hidden_layers=text.layers, num_attention_heads=text.heads, max_position_embeddings=text.context_length,
            hidden_act=text.hidden_act, layer_norm_eps=text.layer_norm_eps, projection_dim=config.embed_dim,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=vision.width, intermediate_size=int(vision.width * vision.mlp_ratio),
            num_hidden_layers=vision.layers, num_attention_heads=vision.num_heads, num_channels=vision.num_channels,
            image_size=vision.image_size, patch_size=vision.patch_size, hidden_act=vision.hidden_act,
            layer_norm_eps=vision.layer_norm_eps, projection_dim=config.embed_dim,
        ),
        projection_dim=config.embed_dim,
        logit_scale_init_value=config.logit_scale_init_value,
    )


def sarclip_config_from_clip(config: CLIPConfig, tokenizer, src: Path) -> SarclipConfig:
    vision, text = config.vision_config, config.text_config

    def mlp_ratio(tower):
        ratio = tower.intermediate_size / tower.hidden_size
        if int(tower.hidden_size * ratio) != tower.intermediate_size:
            raise ExportError(f"{src}: intermediate_size {tower.intermediate_size} is no SARCLIP mlp_ratio * width")
        return ratio

    try:
        return SarclipConfig(
            vision_config=dict(
                image_size=vision.image_size, layers=vision.num_hidden_layers, width=vision.hidden_size,
                head_width=vision.hidden_size // vision.num_attention_heads, mlp_ratio=mlp_ratio(vision),
                patch_size=vision.patch_size, hidden_act=vision.hidden_act, layer_norm_eps=vision.layer_norm_eps,
                num_channels=vision.num_channels,
            ),
            text_config=dict(
                context_length=text.max_position_embeddings, vocab_size=text.vocab_size, width=text.hidden_size,
                heads=text.num_attention_heads, layers=text.num_hidden_layers, mlp_ratio=mlp_ratio(text),
                hidden_act=text.hidden_act, layer_norm_eps=text.layer_norm_eps,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            ),
            embed_dim=config.projection_dim,
            quick_gelu={vision.hidden_act, text.hidden_act} == {"quick_gelu"},
            logit_scale_init_value=config.logit_scale_init_value,
        )
    except ExportError:
        raise
    except ValueError as e:
        raise ExportError(f"{src}: CLIP config not expressible as SARCLIP ({e})") from e


def _read_config(src: Path, model_type: str, hint: str) -> dict:
    if not (src / "config.json").is_file():
        raise ExportError(f"{src}: no config.json; expected a {model_type} model folder saved with save_pretrained")
    try:
        config = json.loads((src / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{src / 'config.json'}: unreadable ({e})") from e
    if config.get("model_type") != model_type:
        raise ExportError(
            f"{src}: config.json has model_type {config.get('model_type')!r}, not {model_type!r}; {hint}"
        )
    return config


def _check_output(src: Path, out: Path, overwrite: bool, model_type: str):
    """`out` may not overlap `src` (be it, hold it or lie inside it: replacing it would delete the source); an existing
    `out` is replaced only with `overwrite`, and only if it is empty or a `model_type` model folder (what this tool
    writes), never a user's other folder."""
    source, target = src.resolve(), out.resolve()
    if target == source or target in source.parents or source in target.parents:
        raise ExportError(f"{out}: the output folder overlaps the source folder {src} (replacing it would delete the "
                          "source); choose a folder outside it")
    if not out.exists():
        return
    if not overwrite:
        raise ExportError(f"{out}: already exists; pass --overwrite to replace it or choose another output folder")
    if not out.is_dir():
        raise ExportError(f"{out}: is a file, not a model folder; choose another output folder")
    if any(out.iterdir()):
        try:
            written = json.loads((out / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            written = None
        if written != model_type:
            raise ExportError(f"{out}: not a {model_type} model folder (no config.json with model_type "
                              f"{model_type!r}); --overwrite replaces only a folder this tool wrote: choose another "
                              "output folder")


def _load_checked(model_class, src: Path):
    """Load weights; every weight must be in the checkpoint and every checkpoint tensor must be used."""
    try:
        model, info = model_class.from_pretrained(src, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise ExportError(f"{src}: cannot load the {model_class.__name__} weights ({e})") from e
    problems = {name: sorted(map(str, keys))[:5] for name, keys in info.items() if keys}
    if problems:
        raise ExportError(f"{src}: weights do not match config.json: {problems}")
    return model.eval()


def _load_tokenizer(tokenizer_class, src: Path, vocab_size: int, eos_token_id: int | None = None):
    if not any((src / name).is_file() for name in TOKENIZER_FILES):
        raise ExportError(f"{src}: no tokenizer ({' or '.join(TOKENIZER_FILES)}); save the processor with the model")
    try:
        tokenizer = tokenizer_class.from_pretrained(src)
    except (OSError, ValueError) as e:
        raise ExportError(f"{src}: cannot load the tokenizer ({e})") from e
    if len(tokenizer) != vocab_size:
        raise ExportError(
            f"{src}: the tokenizer has {len(tokenizer)} tokens but the text tower's vocab_size is {vocab_size}; "
            "save the tokenizer the model was trained with"
        )
    if eos_token_id is not None and tokenizer.eos_token_id != eos_token_id:
        raise ExportError(
            f"{src}: tokenizer end-of-text id {tokenizer.eos_token_id} != config eos_token_id {eos_token_id}"
        )
    return tokenizer


def _tokenizer_parts(tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def native_tokenizer(tokenizer: SarclipTokenizer, context_length: int) -> CLIPTokenizer:
    """SARCLIP's vocabulary as a plain `CLIPTokenizer`.

    Choice: pad with <|endoftext|> (as OpenAI's CLIP tokenizers do). transformers' CLIP pools at the *first*
    eos_token_id (when that id is not 2), i.e. the real end of the text, and causal attention keeps padding out of it,
    so native padding gives SARCLIP's embedding without adding a pad token to the vocabulary.
    """
    vocab, merges = _tokenizer_parts(tokenizer)
    return CLIPTokenizer(
        vocab=vocab, merges=merges, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token, pad_token=tokenizer.eos_token, model_max_length=context_length,
    )


def native_image_processor(image_size: int) -> CLIPImageProcessor:
    """SARCLIP's 8-bit recipe: rescale 1/255, normalise with mean = std = 0.5 ((x - 0.5) * 2), bicubic resize + crop."""
    return CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
        resample=PILImageResampling.BICUBIC, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True,
    )


def _card_metadata(src: Path) -> dict:
    return (metadata_load(src / "README.md") or {}) if (src / "README.md").is_file() else {}


def _write_atomically(src: Path, out: Path, overwrite: bool, model_type: str, write):
    """Call `write(tmp)` on a fresh folder beside `out`, then move it into place (replacing `out` only now)."""
    tmp = staging_folder(out)
    try:
        write(tmp)
        if out.exists():
            _check_output(src, out, overwrite, model_type)  # re-checked: it may have appeared while we were writing
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def sarclip_to_clip(src: str | Path, out: str | Path, overwrite: bool = False, base_model: str | None = None) -> Path:
    """Export the SARCLIP ViT folder `src` as a native `CLIPModel` folder `out` (see the module docstring)."""
    from model_cards import clip_export_model_card

    src, out = Path(src), Path(out)
    _check_output(src, out, overwrite, "clip")
    raw = _read_config(src, "sarclip", "to-clip needs a SARCLIP folder (from-clip imports a CLIP one)")
    if isinstance(raw.get("vision_config", {}).get("layers"), list):
        raise ExportError(
            f"{src}: a ModifiedResNet (RN50/RN101-style) SARCLIP model; transformers has no native ModifiedResNet "
            "CLIP class, so only ViT SARCLIP models can be exported (use the SARCLIP folder with trust_remote_code)"
        )
    model = _load_checked(SarclipModel, src)
    text = model.config.text_config
    tokenizer = _load_tokenizer(SarclipTokenizer, src, text.vocab_size, text.eos_token_id)
    if text.eos_token_id == 2:  # transformers' CLIP then pools at argmax(ids), a legacy rule SARCLIP does not follow
        raise ExportError(f"{src}: eos_token_id 2 selects transformers' legacy argmax pooling; re-train the tokenizer")
    clip_tokenizer = native_tokenizer(tokenizer, text.context_length)
    config = clip_config_from_sarclip(model.config, clip_tokenizer)
    clip = CLIPModel(config).to(model.dtype).eval()
    clip.load_state_dict(sarclip_state_to_clip(model.state_dict()), strict=True)
    metadata = _card_metadata(src)
    vision = model.config.vision_config
    card = clip_export_model_card(
        model_name=f"SARCLIP {src.name} (native CLIP export)",
        architecture=f"ViT, {vision.layers} layers, width {vision.width}, patch {vision.patch_size}",
        source=f"exported from the SARCLIP folder `{src.name}` with `modeling_sarclip.convert_sarclip_to_clip`",
        image_size=vision.image_size, license=metadata.get("license"),
        base_model=base_model or metadata.get("base_model"),
    )

    def write(folder: Path):
        clip.save_pretrained(folder)
        image_processor = native_image_processor(vision.image_size)
        CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer).save_pretrained(folder)
        card.save(folder / "README.md")

    return _write_atomically(src, out, overwrite, "clip", write)


def load_clip_as_sarclip(src: str | Path) -> tuple[SarclipModel, SarclipProcessor]:
    """A transformers `CLIPModel` folder (e.g. one `to-clip` exported) as an in-memory SARCLIP model with the SAR
    processor; `clip_to_sarclip` writes it as a folder."""
    src = Path(src)
    _read_config(src, "clip", "from-clip needs a transformers CLIPModel folder (to-clip exports a SARCLIP one)")
    clip = _load_checked(CLIPModel, src)
    text = clip.config.text_config
    tokenizer = _load_tokenizer(CLIPTokenizer, src, text.vocab_size)
    # CLIP pools at the first eos_token_id, or at argmax(ids) when the config says 2 (old OpenAI configs); SARCLIP pools
    # at the first end-of-text token, which is argmax(ids) only when end-of-text is the largest id.
    if text.eos_token_id == 2 and tokenizer.eos_token_id != text.vocab_size - 1:
        raise ExportError(f"{src}: argmax pooling (eos_token_id 2) with an end-of-text id that is not the largest id")
    if text.eos_token_id != 2 and tokenizer.eos_token_id != text.eos_token_id:
        raise ExportError(f"{src}: tokenizer end-of-text id {tokenizer.eos_token_id} != config {text.eos_token_id}")
    config = sarclip_config_from_clip(clip.config, tokenizer, src)
    model = SarclipModel(config).to(clip.dtype).eval()
    model.load_state_dict(clip_state_to_sarclip(clip.state_dict()), strict=True)
    vocab, merges = _tokenizer_parts(tokenizer)
    sar_tokenizer = SarclipTokenizer(
        vocab=vocab, merges=merges, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token, model_max_length=config.text_config.context_length,
    )
    return model, SarclipProcessor(SarclipImageProcessor(size=config.vision_config.image_size), sar_tokenizer)


def clip_to_sarclip(src: str | Path, out: str | Path, overwrite: bool = False, base_model: str | None = None) -> Path:
    """Import the transformers `CLIPModel` folder `src` as a SARCLIP folder `out` with the SAR processor."""
    from model_cards import sarclip_model_card

    src, out = Path(src), Path(out)
    _check_output(src, out, overwrite, "sarclip")
    model, processor = load_clip_as_sarclip(src)
    config = model.config
    metadata = _card_metadata(src)
    vision = config.vision_config
    card = sarclip_model_card(
        architecture=f"ViT {vision.layers} layers, width {vision.width}, patch {vision.patch_size}",
        source=f"imported from the transformers CLIPModel folder `{src.name}` (SAR image processor replaces CLIP's)",
        license=metadata.get("license"), base_model=base_model or metadata.get("base_model"),
    )

    def write(folder: Path):
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        card.save(folder / "README.md")

    return _write_atomically(src, out, overwrite, "sarclip", write)


def main(argv=None) -> int:
    """`sarclip-export-clip`: user errors (bad source folder, existing output, no network) are `error: ...`, exit 2."""
    return run_cli(_cli, argv)


def _cli(argv) -> int:
    parser = ArgumentParser(
        prog="python -m modeling_sarclip.convert_sarclip_to_clip", description=__doc__
    )
    parser.add_argument("direction", choices=["to-clip", "from-clip"],
                        help="to-clip: SARCLIP ViT folder -> CLIPModel folder; from-clip: CLIPModel folder -> SARCLIP")
    parser.add_argument("src", help="source model folder")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (once the new one is done)")
    parser.add_argument("--base_model", metavar="REPO_ID", default=None,
                        help="base_model for the model card (None: the source card's base_model, if any)")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="also upload OUT to this Hub repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private (with --push_to_hub)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    convert = sarclip_to_clip if args.direction == "to-clip" else clip_to_sarclip
    out = convert(args.src, args.out, overwrite=args.overwrite, base_model=args.base_model)
    print(f"{'CLIPModel' if args.direction == 'to-clip' else 'SARCLIP'} folder written to {out}")
    if args.push_to_hub:
        push_folder(out, args.push_to_hub, private=args.private, commit_message="Add SARCLIP model")
        print(f"pushed to {args.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
