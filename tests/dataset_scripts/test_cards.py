"""`dataset_card`, the one writer of dataset cards: Hub metadata the `huggingface_hub` parser reads back."""

from huggingface_hub import DatasetCard

from dataset_scripts.cards import SAR_TAGS, dataset_card


def test_a_card_carries_its_metadata_and_a_configs_block_only_when_asked(tmp_path):
    text = dataset_card("SAR VQA sets", "Questions.\n", ["visual-question-answering"], tags=("geospatial",), rows=1500,
                        license="other", splits=["train", "test"])
    text.save(tmp_path / "README.md")
    card = DatasetCard.load(tmp_path / "README.md")
    data = card.data.to_dict()
    assert data["tags"] == [*SAR_TAGS, "geospatial"] and data["task_categories"] == ["visual-question-answering"]
    assert data["size_categories"] == ["1K<n<10K"] and data["license"] == "other" and data["pretty_name"] == "SAR VQA sets"
    assert [c["split"] for c in data["configs"][0]["data_files"]] == ["train", "test"]
    assert card.text.startswith("\n# SAR VQA sets\n\nQuestions.")
    assert "configs" not in dataset_card("Tiles", "x\n", ["image-to-text"]).data.to_dict()
