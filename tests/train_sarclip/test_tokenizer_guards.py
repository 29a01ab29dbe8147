"""A tokenizer never silently replaced under trained weights: on resume, or for a saved model without its processor."""

import shutil

import pytest

from modeling_sarclip import SarclipModel
from train.sarclip import fit


def test_resume_without_the_runs_tokenizer_is_refused(tiny_train_config):
    first = fit(tiny_train_config(tokenizer="trained", tokenizer_vocab_size=300, num_epochs=2, max_steps=3))
    shutil.rmtree(first.model_dir.parent / "tokenizer")
    with pytest.raises(ValueError, match=r"tokenizer: missing; the run's checkpoints were trained with"):
        fit(tiny_train_config(tokenizer="trained", tokenizer_vocab_size=300, num_epochs=2, resume="latest"))


def test_a_saved_model_without_its_processor_needs_its_own_tokenizer(tiny_train_config, tmp_path):
    trained = fit(tiny_train_config(max_steps=1))
    bare = tmp_path / "weights_only"
    SarclipModel.from_pretrained(trained.model_dir).save_pretrained(bare)  # no processor_config.json, no tokenizer
    with pytest.raises(ValueError, match="has no processor .* a newly trained BPE would not match"):
        fit(tiny_train_config(init_from=str(bare), tokenizer="trained", max_steps=1, output_dir=str(tmp_path / "a")))
    with pytest.raises(ValueError, match=r"token embeddings but the tokenizer \(open_clip\) has 49408 tokens"):
        fit(tiny_train_config(init_from=str(bare), tokenizer="open_clip", max_steps=1, output_dir=str(tmp_path / "b")))
    resumed = fit(tiny_train_config(init_from=str(bare), max_steps=1, output_dir=str(tmp_path / "c")))  # its own
    assert resumed.state.global_step == 1
