"""SARCLIP tokenizer: CLIP byte-level BPE that reproduces `open_clip.tokenize()` ids exactly.

Two sources:
- `SarclipTokenizer.from_bpe_file(path)`: open_clip's / the official SARCLIP release's `bpe_simple_vocab_16e6.txt.gz`.
- `train_sarclip_tokenizer(texts, vocab_size)`: a small CLIP-style BPE trained on a caption corpus, for models trained
  from scratch.
"""

import gzip
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path

import ftfy
from transformers import CLIPTokenizer
from transformers.tokenization_utils_base import PaddingStrategy

OPEN_CLIP_PAD_ID = 0
CONTEXT_LENGTH = 77


def clean_text(text: str) -> str:
    """open_clip's `_clean_lower`: ftfy fix, double HTML unescape, collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def _bytes_to_unicode() -> list[str]:
    """GPT-2 / CLIP printable stand-ins for the 256 byte values, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def default_bpe_path() -> Path:
    """open_clip's bundled `bpe_simple_vocab_16e6.txt.gz` (the official SARCLIP release ships the same file)."""
    try:
        import open_clip
    except ImportError as e:
        raise FileNotFoundError(
            "no BPE merges file: pass --bpe path/to/bpe_simple_vocab_16e6.txt.gz (shipped with SARCLIP and open_clip)"
        ) from e
    return Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"


class SarclipTokenizer(CLIPTokenizer):
    """`CLIPTokenizer` with open_clip's text cleaning and zero padding, so ids equal `open_clip.tokenize()`.

    Defaults: `padding=True` (to the batch's longest text) and `truncation=True` (to `model_max_length`, the
    end-of-text token kept); `padding="max_length"` gives open_clip's fixed 77-token layout, and any transformers
    `padding` / `truncation` / `max_length` / `return_tensors` value is accepted. Both layouts give the same
    embeddings: attention is causal and pooling happens at the first end-of-text token, so the model never reads
    pad positions. Padding uses id 0 as open_clip does (the pad *token* stays `<|endoftext|>`: making "!" (id 0) a
    special token would change how a literal "!" is encoded).

    Special-token strings typed in a text ("<|endoftext|>") stay text (`split_special_tokens=True`, as in
    open_clip, whose own special tokens are named differently): only the tokenizer places the real tokens, so a
    caption cannot end its embedding early.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, *args, model_max_length: int = CONTEXT_LENGTH, split_special_tokens: bool = True, **kwargs):
        super().__init__(*args, model_max_length=model_max_length, split_special_tokens=split_special_tokens,
                         **kwargs)

    def __call__(self, *args, padding=True, truncation=True, **kwargs):
        return super().__call__(*args, padding=padding, truncation=truncation, **kwargs)

    @classmethod
    def from_bpe_file(cls, bpe_path: str | Path | None = None, **kwargs) -> "SarclipTokenizer":
        """Build the 49408-token CLIP vocabulary from open_clip's `bpe_simple_vocab_16e6.txt.gz` merges file
        (default: `default_bpe_path()`)."""
        bpe_path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
        try:
            with gzip.open(bpe_path, "rt", encoding="utf-8") if bpe_path.suffix == ".gz" else open(bpe_path) as f:
                lines = f.read().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{bpe_path}: cannot read the BPE merges file ({e})") from e
        merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
        if len(merges) != 48894 or any(len(m) != 2 for m in merges):
            raise ValueError(f"{bpe_path}: not a CLIP BPE merges file (expected 48894 merge pairs after the header)")
        byte_chars = _bytes_to_unicode()
        tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        vocab = {token: i for i, token in enumerate(tokens)}
        return cls(vocab=vocab, merges=merges, **kwargs)

    def _encode_plus(self, text, text_pair=None, **kwargs):
        return super()._encode_plus(_clean(text), _clean(text_pair), **kwargs)

    def set_truncation_and_padding(self, padding_strategy, *args, **kwargs):
        super().set_truncation_and_padding(padding_strategy, *args, **kwargs)
        if padding_strategy != PaddingStrategy.DO_NOT_PAD:
            self._tokenizer.enable_padding(**{**self._tokenizer.padding, "pad_id": OPEN_CLIP_PAD_ID})

    def _decode(self, token_ids, skip_special_tokens: bool = False, **kwargs) -> str:
        token_ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        if skip_special_tokens and self.eos_token_id in token_ids:  # drop the end-of-text token and the zero padding
            token_ids = token_ids[: token_ids.index(self.eos_token_id)]
        return super()._decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs)


def _clean(text):
    if text is None:
        return None
    if isinstance(text, str):
        return clean_text(text)
    return [_clean(t) for t in text]


def train_sarclip_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> SarclipTokenizer:
    """Train a CLIP-style byte-level BPE (same normaliser, pre-tokeniser and `</w>` suffix) on a caption corpus.

    The special tokens get ids 0 (`<|startoftext|>`) and 1 (`<|endoftext|>`): set the text config's `bos_token_id` /
    `eos_token_id` from the returned tokenizer.
    """
    base = SarclipTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1}, merges=[])
    trained = base.train_new_from_iterator((clean_text(t) for t in texts), vocab_size=vocab_size)
    # The trainer's alphabet holds every byte, but a word-final byte ("1</w>") only when the corpus ends a word with
    # it; without that token, a caption with a new word ("2S1") would turn into end-of-text tokens and be cut short
    # at EOS pooling. Appending the 256 word-final bytes makes every text encodable (vocab grows by at most 256).
    model = json.loads(trained.backend_tokenizer.to_str())["model"]
    merges = [tuple(m) for m in model["merges"]]
    # Ids in a canonical order, so that the same corpus always gives the same tokenizer (and the same model for the
    # same seed): the trainer numbers its single-character tokens in hash order, which changes from process to
    # process. Special tokens, then every single-character token sorted, then each merge's result in merge order.
    merged = list(dict.fromkeys(a + b for a, b in merges))
    singles = set(model["vocab"]) | {c + "</w>" for c in _bytes_to_unicode()}
    singles -= {"<|startoftext|>", "<|endoftext|>", *merged}
    order = ["<|startoftext|>", "<|endoftext|>", *sorted(singles), *merged]
    return SarclipTokenizer(vocab={token: i for i, token in enumerate(order)}, merges=merges)


__all__ = ["SarclipTokenizer", "clean_text", "train_sarclip_tokenizer"]
