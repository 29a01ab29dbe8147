"""HCoT prompt construction (five layers, multi-scale chain, task variants) and 8-field regex extraction."""

import pytest

from dataset_scripts.geovl import hcot

CONTEXT = hcot.TileContext(
    center_lonlat=(116.41, 39.51),
    bounds_lonlat=(116.40, 39.50, 116.42, 39.52),
    pixel_size_m=(1.0, 1.0),
    size_px=(1024, 1024),
    bands=1,
    place="Beijing Daxing Airport",
)


def answer_for(fields, reasoning=True):
    body = "\n".join(f"<{name}>{text}</{name}>" for name, text in fields.items())
    return ("<reasoning>Step 1: <target_category>draft</target_category> ...</reasoning>\n" if reasoning else "") + body


def test_prompt_has_five_layers_geo_and_scale():
    sensor = hcot.SensorInfo("Gaofen-3", "C", ("HH",))
    prompt = hcot.build_hcot_prompt(CONTEXT, hcot.HCoTTask.GROUND_TARGET, "large", sensor, image_png=b"png")
    text = prompt.user
    layers = ("Earth cognition", "Social priors", "SAR theory", "Instance-level discrimination",
              "Knowledge calibration")
    for layer in layers:
        assert layer in text
    assert text.index("Earth cognition") < text.index("Social priors") < text.index("SAR theory")
    assert "latitude 39.51000, longitude 116.41000" in text and "Beijing Daxing Airport" in text
    assert "1024 x 1024 pixels = 1024 m x 1024 m" in text
    assert "Gaofen-3" in text and "C band" in text and "HH" in text and "8-bit grey-level" in text
    assert "Boeing 737-800 39.5 x 35.8 m" in text  # resolution-aware scale references for aircraft
    assert "LARGE-scale" in text
    for name in hcot.SUBTEXT_FIELDS:
        assert f"<{name}>" in text and f"</{name}>" in text
    assert prompt.image_png == b"png" and "SAR" in prompt.system


def test_task_variants_differ():
    prompts = {task: hcot.build_hcot_prompt(CONTEXT, task, "large").user for task in hcot.HCoTTask}
    marine = prompts[hcot.HCoTTask.MARINE_TARGET]
    assert "container ships" in marine and "inshore" in marine
    assert "road networks" in prompts[hcot.HCoTTask.TERRAIN] and "water bodies" in prompts[hcot.HCoTTask.TERRAIN]
    assert "aircraft" in prompts[hcot.HCoTTask.GROUND_TARGET]
    assert len(set(prompts.values())) == 3


def test_multiscale_chain_carries_parent_text():
    t_l = "T_L: an international airport south of Beijing."
    medium = hcot.build_hcot_prompt(CONTEXT, "terrain", "medium", parent_text=t_l).user
    assert "MEDIUM-scale" in medium and "enclosing large-scale image" in medium and t_l in medium
    t_m = "T_M: two parallel runways and an apron."
    small = hcot.build_hcot_prompt(CONTEXT, "terrain", "small", parent_text=t_m).user
    assert "SMALL-scale" in small and "enclosing medium-scale image" in small and t_m in small and t_l not in small
    with pytest.raises(ValueError, match="medium tile needs its parent text"):
        hcot.build_hcot_prompt(CONTEXT, "terrain", "medium")
    with pytest.raises(ValueError, match="large tile needs no"):
        hcot.build_hcot_prompt(CONTEXT, "terrain", "large", parent_text=t_l)
    with pytest.raises(ValueError, match="scale must be one of"):
        hcot.build_hcot_prompt(CONTEXT, "terrain", "huge")


def test_resolution_changes_scale_reasoning():
    coarse = hcot.TileContext((0.0, 0.0), (0, 0, 0.01, 0.01), (10.0, 10.0), (100, 100), bands=2)
    text = hcot.build_hcot_prompt(coarse, "marine_target", "large", hcot.SensorInfo(polarisations=("VV", "VH"))).user
    assert "colour composite: red = VV, green = VH, blue = their mean" in text
    assert "One pixel is 10.00 m x 10.00 m" in text and "100 x 100 pixels = 1000 m x 1000 m" in text
    assert "smaller than about 3 pixels (30 m)" in text


def test_parse_eight_fields():
    fields = {name: f"  text of\n {name}  " for name in hcot.SUBTEXT_FIELDS}
    parsed = hcot.parse_subtexts(answer_for(fields), "tile_1")
    assert list(parsed) == list(hcot.SUBTEXT_FIELDS)
    assert parsed["target_category"] == "text of target_category"  # the <reasoning> draft is ignored
    assert hcot.join_subtexts(parsed) == " ".join(f"text of {n}" for n in hcot.SUBTEXT_FIELDS)
    upper = answer_for({name.upper(): "x" for name in hcot.SUBTEXT_FIELDS}, reasoning=False)
    assert hcot.parse_subtexts(upper, "tile_2")["landform"] == "x"


def test_missing_duplicate_and_empty_fields_name_the_item():
    fields = {name: "ok" for name in hcot.SUBTEXT_FIELDS}
    del fields["target_quantity"]
    with pytest.raises(hcot.MissingFieldError, match=r"item 'city_M_0_50': LLM answer lacks field <target_quantity>"):
        hcot.parse_subtexts(answer_for(fields), "city_M_0_50")
    dup = answer_for({name: "ok" for name in hcot.SUBTEXT_FIELDS}) + "\n<landform>again</landform>"
    with pytest.raises(hcot.MissingFieldError, match=r"item 'a': LLM answer has field <landform> 2 times"):
        hcot.parse_subtexts(dup, "a")
    empty = answer_for({**{name: "ok" for name in hcot.SUBTEXT_FIELDS}, "spatial_layout": "  "})
    with pytest.raises(hcot.MissingFieldError, match=r"item 'b': LLM answer has an empty field <spatial_layout>"):
        hcot.parse_subtexts(empty, "b")
    with pytest.raises(hcot.MissingFieldError, match="lacks field <geographic_context>"):
        hcot.parse_subtexts("I cannot see the image.", "c")
