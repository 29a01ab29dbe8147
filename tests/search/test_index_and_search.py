"""`python -m train index` / `search` and their Python API on a tiny real model: what is indexed, what a query finds
(checked against brute force), resume after a kill, and every refusal."""

import json
from pathlib import Path

import numpy as np
import pytest

import train.search.build as build_module
from train.__main__ import main
from train.evaluation.encode import encode_images, encode_texts
from train.sarclip.model_io import load_trained_model
from train.search import ArchiveIndex, ArchiveIndexError, IndexSettings, build_index
from train.search.faiss_index import EmbeddingColumn


@pytest.fixture(scope="module")
def chip_index(tmp_path_factory, model_dir, chip_folder):
    return build_index(str(model_dir), str(chip_folder), tmp_path_factory.mktemp("index") / "chips")


def test_index_holds_every_chip_with_its_label_path_and_embedding(chip_index, model_dir, chip_folder):
    manifest = json.loads((chip_index / "manifest.json").read_text())
    files = sorted(chip_folder.rglob("*.png"))
    assert manifest["rows"] == len(files) == 18 and manifest["kind"] == "dataset"
    assert manifest["model"] == str(model_dir.resolve()) and manifest["index_factory"] == "Flat"
    assert manifest["class_words"] == {"aircraft": "aircraft", "building": "building", "ship": "ship",
                                       "storage_tank": "storage tank", "vehicle": "vehicle"}  # prompts' spelling
    archive = ArchiveIndex(chip_index)
    items = archive.items
    assert sorted(Path(p) for p in items["path"]) == files
    assert all(Path(path).parent.name == label for path, label in zip(items["path"], items["label"]))
    model, processor = load_trained_model(model_dir)
    expected = encode_images(model, processor, list(items["path"])).numpy()
    np.testing.assert_allclose(EmbeddingColumn(items)[:], expected, atol=1e-6)


def test_text_and_image_queries_find_what_brute_force_finds(chip_index, model_dir):
    archive = ArchiveIndex(chip_index)
    model, processor = load_trained_model(model_dir)
    vectors = EmbeddingColumn(archive.items)[:]
    text = encode_texts(model, processor, ["a SAR image of a ship"]).numpy()[0]
    order = np.argsort(-(vectors @ text), kind="stable")
    hits = archive.search("a SAR image of a ship", k=5)
    assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert hits[0]["id"] == archive.items[int(order[0])]["id"]
    assert [hit["score"] for hit in hits] == pytest.approx(sorted(vectors @ text, reverse=True)[:5], abs=1e-5)
    chip = archive.items[7]["path"]
    by_image = archive.search(image=chip, k=3)
    assert by_image[0]["path"] == chip and by_image[0]["score"] == pytest.approx(1.0, abs=1e-5)
    both = archive.search("a SAR image of a ship", image=chip, k=1)  # normalised sum of the two embeddings
    combined = (text / np.linalg.norm(text) + vectors[7]) / np.linalg.norm(text / np.linalg.norm(text) + vectors[7])
    assert both[0]["id"] == archive.items[int(np.argmax(vectors @ combined))]["id"]
    with pytest.raises(ValueError, match="empty query"):
        archive.search("   ")


def test_search_command_writes_hits_and_a_contact_sheet(chip_index, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "results"
    assert main(["search", str(chip_index), "a SAR image of a vehicle", "--k", "7", "--out", str(out)]) == 0
    hits = json.loads((out / "hits.json").read_text())["hits"]
    assert len(hits) == 7 and hits[0]["rank"] == 1 and hits[0]["path"] in capsys.readouterr().out
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size == (5 * 192, 2 * (192 + 28))
    assert not (out / "footprints.geojson").exists()  # chips have no footprint
    assert np.asarray(sheet.crop((0, 0, 192, 192))).std() > 0  # a rendered chip, not an empty cell
    assert main(["search", str(chip_index), "a ship", "--out", str(out)]) == 2  # an existing results folder
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((out / "hits.json").read_text())["hits"] == hits


def test_scenes_are_tiled_with_footprints_and_written_as_geojson(tmp_path, model_dir, scene_folder, capsys):
    index = tmp_path / "scenes_index"
    assert main(["index", str(model_dir), str(scene_folder), "--out", str(index), "--tile-side-m", "320"]) == 0
    archive = ArchiveIndex(index)
    assert archive.manifest["kind"] == "scenes" and len(archive) == 8  # 2 scenes x (64 px / 32 px)^2
    assert archive.manifest["skipped"] == {}
    first = archive.items[0]
    assert first["id"] == "scene_0_0_0" and first["window"] == [0, 0, 32, 32]
    lon0, lat0, lon1, lat1 = first["footprint"]
    assert 14.99 < lon0 < lon1 < 15.01 and 40.6 < lat0 < lat1 < 40.7  # UTM 33N at (500 km E, 4500 km N)
    out = tmp_path / "hits"
    query = str(scene_folder / "scene_1.tif")
    assert main(["search", str(index), "--image", query, "--k", "3", "--out", str(out)]) == 0
    geojson = json.loads((out / "footprints.geojson").read_text())
    assert [f["properties"]["rank"] for f in geojson["features"]] == [1, 2, 3]
    ring = geojson["features"][0]["geometry"]["coordinates"][0]
    hit = json.loads((out / "hits.json").read_text())["hits"][0]
    assert ring[0] == hit["footprint"][:2] and ring[2] == hit["footprint"][2:] and ring[0] == ring[-1]


def test_nodata_tiles_are_skipped_and_counted(tmp_path, model_dir):
    from tests.conftest import write_geotiff

    db = np.full((64, 64), -12.0, np.float32)
    db[:40] = -9999.0  # nodata over the top 40 rows: the top tiles are empty, the bottom ones 3/4 valid
    write_geotiff(tmp_path / "edge.tif", db, nodata=-9999)
    index = build_index(str(model_dir), str(tmp_path / "edge.tif"), tmp_path / "index",
                        IndexSettings(tile_side_m=320, min_valid=0.5))
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["skipped"] == {"tiles with too few valid pixels": 2}


def test_a_killed_build_resumes_without_re_embedding_finished_chunks(tmp_path, model_dir, chip_folder, monkeypatch):
    reference = build_index(str(model_dir), str(chip_folder), tmp_path / "reference")
    seen = []
    real_encode = build_module.encode_images

    def encode_then_die(model, processor, images, *args):
        if len(seen) == 2:
            raise KeyboardInterrupt  # killed while embedding the third chunk
        seen.append(len(images))
        return real_encode(model, processor, images, *args)

    monkeypatch.setattr(build_module, "encode_images", encode_then_die)
    out = tmp_path / "index"
    settings = IndexSettings(chunk_rows=5)
    with pytest.raises(KeyboardInterrupt):
        build_index(str(model_dir), str(chip_folder), out, settings)
    assert seen == [5, 5] and not out.exists()
    assert len(list((tmp_path / ".index.partial" / "embeddings").glob("*.npy"))) == 2

    def encode_counting(model, processor, images, *args):
        seen.append(len(images))
        return real_encode(model, processor, images, *args)

    monkeypatch.setattr(build_module, "encode_images", encode_counting)
    seen.clear()
    build_index(str(model_dir), str(chip_folder), out, settings)
    assert seen == [5, 3]  # only rows 10-17
    assert not (tmp_path / ".index.partial").exists()
    np.testing.assert_allclose(EmbeddingColumn(ArchiveIndex(out).items)[:],
                               EmbeddingColumn(ArchiveIndex(reference).items)[:],
                               atol=1e-6)


def test_an_unfinished_build_of_another_index_is_not_mixed_in(tmp_path, model_dir, other_model_dir, chip_folder):
    work = tmp_path / ".index.partial"
    work.mkdir()
    (work / "plan.json").write_text(json.dumps({"model": "x", "model_fingerprint": "0" * 64}))
    with pytest.raises(ArchiveIndexError, match="changed: .*model_fingerprint.*delete"):
        build_index(str(model_dir), str(chip_folder), tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_an_index_is_replaced_only_with_overwrite_and_other_folders_never(tmp_path, model_dir, chip_folder, capsys):
    out = tmp_path / "index"
    build_index(str(model_dir), str(chip_folder), out, IndexSettings(splits=["train"]))
    manifest = (out / "manifest.json").read_text()
    assert main(["index", str(model_dir), str(chip_folder), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "manifest.json").read_text() == manifest
    mine = tmp_path / "my_results"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["index", str(model_dir), str(chip_folder), "--out", str(mine), "--overwrite"]) == 2
    assert "not an archive index" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep"
    assert main(["index", str(model_dir), str(chip_folder), "--out", str(out), "--overwrite"]) == 0


def test_a_query_with_another_model_is_refused(chip_index, other_model_dir, model_dir, tmp_path, capsys):
    with pytest.raises(ArchiveIndexError, match="different model"):
        ArchiveIndex(chip_index, str(other_model_dir))
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "copy")  # the same model elsewhere is accepted
    assert ArchiveIndex(chip_index, str(copy)).search("ship", k=1)
    assert main(["search", str(chip_index), "ship", "--model", str(other_model_dir)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ") and "different model" in err and "Traceback" not in err


@pytest.mark.parametrize("damage, message", [
    (lambda index: (index / "manifest.json").unlink(), "manifest.json: missing"),
    (lambda index: (index / "manifest.json").write_text("{not json"), "manifest.json: corrupt"),
    (lambda index: (index / "embedding.faiss").write_bytes(b"\0" * 64), "embedding.faiss: corrupt"),
    (lambda index: (index / "embedding.faiss").unlink(), "embedding.faiss: missing"),
    (lambda index: __import__("shutil").rmtree(index / "items"), "items: missing or corrupt"),
])
def test_a_damaged_index_is_a_clear_error(tmp_path, chip_index, damage, message, capsys):
    import shutil

    index = shutil.copytree(chip_index, tmp_path / "index")
    damage(index)
    assert main(["search", str(index), "a ship"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ") and message in err and "Traceback" not in err


def test_user_errors_of_the_commands(tmp_path, model_dir, chip_folder, capsys):
    from tests.conftest import write_geotiff

    no_crs = tmp_path / "no_crs"
    no_crs.mkdir()
    write_geotiff(no_crs / "scene.tif", np.zeros((64, 64), np.float32), geokeys=(1, 1, 0, 1, 1024, 0, 1, 1))
    tifffile_plain = tmp_path / "plain"
    tifffile_plain.mkdir()
    import tifffile

    tifffile.imwrite(tifffile_plain / "scene.tif", np.zeros((64, 64), np.float32))
    cases = [
        (["index", str(model_dir), str(tifffile_plain), "--out", str(tmp_path / "a")], "not geo-referenced"),
        (["index", str(model_dir), str(no_crs), "--out", str(tmp_path / "e")], "scene.tif"),
        (["index", str(model_dir), str(chip_folder), "--out", str(tmp_path / "b"), "--split", "nope"], "no split"),
        (["index", str(tmp_path / "missing"), str(chip_folder), "--out", str(tmp_path / "c")], "no such model"),
        (["index", str(model_dir), str(chip_folder), "--out", str(tmp_path / "d"), "--index-factory", "Bogus"],
         "not a faiss index_factory string"),
        (["index", str(model_dir), str(tmp_path / "missing.tif"), "--out", str(tmp_path / "f")], "no such GeoTIFF"),
        (["index", str(model_dir), str(chip_folder), "--out", str(tmp_path / "g"), "--chunk-rows", "0"],
         "chunk_rows: must be"),
        (["index", str(model_dir), str(chip_folder), "--out", str(tmp_path / "h"), "--min-valid", "1.5"],
         "min_valid: must be"),
        (["search", str(tmp_path / "nowhere"), "ship"], "no such index folder"),
        (["search", str(tmp_path), ""], "empty query"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in err and "Traceback" not in err, (argv, err)
    assert not any((tmp_path / name).exists() for name in "abcdefgh")


def test_a_bf16_index_finds_what_the_fp32_index_finds(tmp_path, model_dir, chip_folder, chip_index):
    index = build_index(str(model_dir), str(chip_folder), tmp_path / "bf16", IndexSettings(precision="bf16"))
    archive, reference = ArchiveIndex(index), ArchiveIndex(chip_index)
    assert archive.manifest["precision"] == "bf16" and reference.manifest["precision"] == "fp32"
    low, high = EmbeddingColumn(archive.items)[:], EmbeddingColumn(reference.items)[:]
    assert not np.array_equal(low, high) and (low * high).sum(1).min() > 0.99  # bf16 autocast, nearly the same
    chip = archive.items[4]["path"]
    assert archive.search(image=chip, k=1)[0]["path"] == chip  # queries are embedded in the index's precision
    assert archive.search(image=chip, k=1)[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_an_exported_clip_folder_indexes_like_its_sarclip_folder(tmp_path, model_dir, chip_folder, chip_index):
    from modeling_sarclip.convert_sarclip_to_clip import sarclip_to_clip

    clip_dir = sarclip_to_clip(model_dir, tmp_path / "clip-export")
    index = build_index(str(clip_dir), str(chip_folder), tmp_path / "index")
    np.testing.assert_allclose(EmbeddingColumn(ArchiveIndex(index).items)[:],
                               EmbeddingColumn(ArchiveIndex(chip_index).items)[:],
                               atol=2e-5)
    assert ArchiveIndex(index).search("a SAR image of a ship", k=1)[0]["id"] == \
        ArchiveIndex(chip_index).search("a SAR image of a ship", k=1)[0]["id"]


def test_a_hub_model_id_is_indexed_and_queried_from_the_local_cache(tmp_path, model_dir, chip_folder, offline_hub):
    from huggingface_hub import HfApi

    HfApi().create_repo("org/tiny-sarclip")
    HfApi().upload_folder(repo_id="org/tiny-sarclip", folder_path=str(model_dir))
    index = build_index("org/tiny-sarclip", str(chip_folder), tmp_path / "index")
    archive = ArchiveIndex(index)
    assert archive.manifest["model"] == "org/tiny-sarclip"
    assert archive.model_dir == offline_hub.snapshot("org/tiny-sarclip")
    assert archive.search(image=archive.items[0]["path"], k=1)[0]["score"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(FileNotFoundError, match="org/unknown"):
        build_index("org/unknown", str(chip_folder), tmp_path / "other")


def test_a_compiled_image_tower_indexes_like_the_eager_one(tmp_path, model_dir, chip_folder, chip_index, capsys):
    """`--compile true`: inductor with frozen weights; the same embeddings to float rounding."""
    index = build_index(str(model_dir), str(chip_folder), tmp_path / "compiled", IndexSettings(compile="true"))
    assert "compiling the image tower" in capsys.readouterr().out
    np.testing.assert_allclose(EmbeddingColumn(ArchiveIndex(index).items)[:],
                               EmbeddingColumn(ArchiveIndex(chip_index).items)[:], atol=1e-5)


def test_compile_auto_waits_for_a_corpus_that_pays_for_it_and_true_needs_a_compiler(monkeypatch):
    """`auto`: from the image-tower work of 20,000 ViT-B-32 images (the measured break-even, doubled); a smaller
    tower needs more images, a larger one fewer; ResNet towers stay eager."""
    from modeling_sarclip import SarclipConfig

    vit_b32, vit_l14, resnet = (SarclipConfig.from_preset(name).vision_config for name in ("ViT-B-32", "ViT-L-14",
                                                                                          "RN50"))
    threshold = build_module.COMPILE_PAYS_FROM_VIT_B32_IMAGES
    assert build_module.can_compile()  # the test machine has g++
    assert not build_module.wants_compile("auto", threshold - 1, vit_b32)
    assert build_module.wants_compile("auto", threshold, vit_b32)
    assert build_module.wants_compile("auto", threshold // 10, vit_l14)  # ~18x the work per image
    assert not build_module.wants_compile("auto", 10**7, resnet) and build_module.wants_compile("true", 10, resnet)
    assert not build_module.wants_compile("false", 10**7, vit_b32)
    monkeypatch.setattr(build_module, "can_compile", lambda: False)
    assert not build_module.wants_compile("auto", 10**7, vit_l14)
    with pytest.raises(ValueError, match="no C\\+\\+ compiler found"):
        build_module.wants_compile("true", 10, vit_b32)


def test_compile_true_without_a_compiler_is_refused_before_any_folder_is_made(tmp_path, model_dir, chip_folder,
                                                                                  monkeypatch):
    monkeypatch.setattr(build_module, "can_compile", lambda: False)
    with pytest.raises(ValueError, match="no C\\+\\+ compiler found"):
        build_index(str(model_dir), str(chip_folder), tmp_path / "index", IndexSettings(compile="true"))
    assert list(tmp_path.iterdir()) == []
