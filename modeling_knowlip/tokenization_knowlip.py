"""A BERT WordPiece tokenizer trained offline on a caption corpus (the alternative is any local BERT vocab)."""

from collections.abc import Iterable

from transformers import BertTokenizer


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int) -> BertTokenizer:
    """Train an uncased WordPiece vocabulary of at most `vocab_size` tokens with `tokenizers`.

    Special tokens get ids [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4; build the model config with
    `SarKnowlipConfig.from_preset(name, tokenizer=tokenizer)` so that its ids match.
    """
    tokenizer = BertTokenizer().train_new_from_iterator(texts, vocab_size=vocab_size)
    if len(tokenizer) <= 5:
        raise ValueError("train_wordpiece_tokenizer: the corpus produced no vocabulary (empty texts?)")
    return tokenizer


__all__ = ["train_wordpiece_tokenizer"]
