import csv

import open_clip
import pytest
import torch

from modeling_sarclip import SarclipTokenizer, train_sarclip_tokenizer

TRICKY = [
    "A SAR image of the BTR_60 armored personnel carrier.",
    "Hello!   World &amp; &lt;ships&gt;",
    "Ünïcödé tëxt — with dashes… and 12,345 numbers",
    "it's a ship's wake, isn't it?",
    "x " * 120,  # longer than the 77-token context: truncated with the end-of-text token kept
    "",
]


def _real_captions(sar_data_dir):
    with open(sar_data_dir / "sarclip_examples" / "retrieval_captions_no_images.tsv", newline="") as f:
        return [row["caption"] for row in csv.DictReader(f, delimiter="\t")]


def test_ids_equal_open_clip_tokenize(clip_tokenizer, sar_data_dir):
    texts = _real_captions(sar_data_dir) + TRICKY
    assert len(texts) > 50
    ours = clip_tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    torch.testing.assert_close(ours["input_ids"], open_clip.tokenize(texts))


def test_vocabulary_layout(clip_tokenizer):
    assert len(clip_tokenizer) == 49408
    assert clip_tokenizer.bos_token_id == 49406 and clip_tokenizer.eos_token_id == 49407


def test_dynamic_padding_pads_with_zero_and_decodes(clip_tokenizer):
    enc = clip_tokenizer(["a ship", "a SAR image of a large tank"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids.shape[1] == mask[1].sum() and (ids[0][mask[0] == 0] == 0).all()
    assert clip_tokenizer.decode(ids[0], skip_special_tokens=True) == "a ship"


def test_save_and_load_round_trip(tmp_path, clip_tokenizer):
    clip_tokenizer.save_pretrained(tmp_path)
    loaded = SarclipTokenizer.from_pretrained(tmp_path)
    texts = TRICKY[:4]
    torch.testing.assert_close(
        loaded(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")["input_ids"],
        open_clip.tokenize(texts),
    )


def test_from_bpe_file_rejects_other_files(tmp_path):
    bad = tmp_path / "merges.txt"
    bad.write_text("#version\na b\n")
    with pytest.raises(ValueError, match="merges.txt: not a CLIP BPE merges file"):
        SarclipTokenizer.from_bpe_file(bad)


def test_train_small_tokenizer_on_captions(sar_data_dir):
    captions = _real_captions(sar_data_dir)
    tokenizer = train_sarclip_tokenizer(captions, vocab_size=400)
    assert len(tokenizer) <= 400 + 256  # learned vocabulary + the word-final bytes
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1)
    ids = tokenizer(captions[0])["input_ids"]
    assert ids[0] == 0 and ids[-1] == 1 and len(ids) < len(captions[0].split()) * 3
    assert tokenizer.decode(ids, skip_special_tokens=True) == " ".join(captions[0].lower().split())


def test_trained_tokenizer_encodes_unseen_words_without_end_of_text():
    tokenizer = train_sarclip_tokenizer(["a sar image of a tank", "a ship at sea"] * 20, vocab_size=300)
    ids = tokenizer("the 2S1 howitzer, 12 km!")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.eos_token_id) == 1 and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "the2s1howitzer,12km!"


def test_defaults_pad_to_the_longest_text_and_truncate(clip_tokenizer):
    texts = ["a ship", "a SAR image of a large tank", "x " * 120]
    short = clip_tokenizer(texts[:2], return_tensors="pt")
    fixed = clip_tokenizer(texts[:2], padding="max_length", return_tensors="pt")["input_ids"]
    assert short["input_ids"].shape == (2, short["attention_mask"][1].sum())  # the longest text sets the width
    assert torch.equal(fixed[:, : short["input_ids"].shape[1]], short["input_ids"]) and (fixed[:, 9:] == 0).all()
    long = clip_tokenizer(texts, return_tensors="pt")["input_ids"]
    assert long.shape == (3, 77) and long[2, -1] == clip_tokenizer.eos_token_id  # truncated, end-of-text kept
    # transformers' standard arguments
    assert clip_tokenizer(texts, max_length=8, return_tensors="np")["input_ids"].shape == (3, 8)
    assert [len(ids) for ids in clip_tokenizer(texts[:2], padding=False)["input_ids"]] == [4, 9]
    assert len(clip_tokenizer(texts[2], truncation=False)["input_ids"]) == 122  # 120 words + start + end


def test_processor_text_defaults_to_the_longest_text(clip_tokenizer):
    from modeling_sarclip import SarclipImageProcessor, SarclipProcessor

    processor = SarclipProcessor(SarclipImageProcessor(), clip_tokenizer)
    assert processor(text=["a ship", "a SAR image of a large tank"])["input_ids"].shape == (2, 9)
    assert processor(text=["a ship"], padding="max_length")["input_ids"].shape == (1, 77)
    assert processor(text=["a ship"], padding="max_length", max_length=16)["input_ids"].shape == (1, 16)


def test_typed_special_token_strings_stay_text(clip_tokenizer, tmp_path):
    """A caption that contains "<|endoftext|>" must not end its embedding early (pooling is at the first
    end-of-text token): only the tokenizer places the real start and end tokens, as in open_clip."""
    texts = ["a ship <|endoftext|> next to a tank", "<|startoftext|>a SAR image<|endoftext|>"]
    clip_tokenizer.save_pretrained(tmp_path)
    for tokenizer in (clip_tokenizer, SarclipTokenizer.from_pretrained(tmp_path)):
        ids = tokenizer(texts, padding="max_length", return_tensors="pt")["input_ids"]
        torch.testing.assert_close(ids, open_clip.tokenize(texts))
        assert ((ids == tokenizer.eos_token_id).sum(1) == 1).all() and ((ids == tokenizer.bos_token_id).sum(1) == 1).all()


def test_a_trained_bpe_is_the_same_in_every_process():
    """The `tokenizers` trainer numbers single characters in hash order, which changes from process to process; the
    ids are put in a canonical order, so the same captions give the same tokenizer (and the same model per seed)."""
    import subprocess
    import sys

    script = ("from modeling_sarclip import train_sarclip_tokenizer\n"
              "captions = ['a SAR image of a T72 tank.', 'ships near the port, bright', 'farmland and urban zones'] * 3\n"
              "print(train_sarclip_tokenizer(captions, vocab_size=300).backend_tokenizer.to_str())\n")
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in (1, 2, 3)}
    assert len(runs) == 1
