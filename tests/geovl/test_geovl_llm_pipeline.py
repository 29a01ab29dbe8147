"""LLM backends (OpenAI-compatible client against a local stub server, tiny local transformers model),
the resumable response cache, and the GeoTIFF -> parquet captioning pipeline and its CLI."""

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import datasets
import pyarrow.parquet as pq
import pytest

from dataset_scripts.geovl.__main__ import main as cli_main
from dataset_scripts.geovl.hcot import SUBTEXT_FIELDS, SensorInfo, build_hcot_prompt
from dataset_scripts.geovl.llm import (
    CachedLLM,
    ChatPrompt,
    LLMRequestError,
    OpenAIChatBackend,
    ResponseCache,
    TransformersTextBackend,
    cache_key,
)
from dataset_scripts.geovl.pipeline import build_geovl_dataset

SCALES_M = (1000.0, 500.0, 250.0)  # on the 224 px, 10 m example: 4 large, 16 medium, 64 small tiles


def digest(user_text: str) -> str:
    return hashlib.sha256(user_text.encode()).hexdigest()[:10]


def tagged_answer(user_text: str) -> str:
    h = digest(user_text)
    return "<reasoning>thinking</reasoning>\n" + "\n".join(f"<{n}>{n} of {h}.</{n}>" for n in SUBTEXT_FIELDS)


class StubOpenAI:
    """OpenAI chat-completions stub on 127.0.0.1 with failure injection and a request log."""

    def __init__(self):
        self.log = []  # (status, payload)
        self.fail_first, self.fail_status = 0, 500
        self.slow_first, self.slow_s = 0, 0.0
        self.answer = tagged_answer
        self.refuse = lambda user_text: False
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user_text = payload["messages"][1]["content"][0]["text"]
                with stub._lock:
                    n = len(stub.log)
                    if self.path != "/v1/chat/completions":
                        status = 404
                    elif n < stub.fail_first:
                        status = stub.fail_status
                    elif stub.refuse(user_text):
                        status = 400
                    else:
                        status = 200
                    stub.log.append((status, payload, dict(self.headers)))
                if status == 200 and n < stub.fail_first + stub.slow_first:
                    time.sleep(stub.slow_s)
                body = (
                    {"choices": [{"index": 0, "message": {"role": "assistant", "content": stub.answer(user_text)}}]}
                    if status == 200
                    else {"error": {"message": f"injected {status}"}}
                )
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ok_prompts(self) -> Counter:
        """How often each distinct prompt (user text + image) got a 200 answer."""
        return Counter(
            hashlib.sha256(json.dumps(p["messages"], sort_keys=True).encode()).hexdigest() for s, p, _ in self.log if s == 200
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = StubOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="module")
def example_tif(sar_data_dir):
    return sar_data_dir / "sarclip_examples" / "example.tif"


def client(stub, **kwargs):
    return OpenAIChatBackend(stub.url, "stub-gpt", api_key="sk-test", backoff_s=0.01, **kwargs)


def test_client_payload_and_auth(stub):
    png = b"\x89PNG fake bytes"
    answer = client(stub).generate(ChatPrompt("system text", "user text", png))
    assert answer == tagged_answer("user text")
    (status, payload, headers), = stub.log
    assert status == 200 and headers["Authorization"] == "Bearer sk-test"
    assert payload["model"] == "stub-gpt"
    assert payload["messages"][0] == {"role": "system", "content": "system text"}
    image_url = payload["messages"][1]["content"][1]["image_url"]["url"]
    assert base64.b64decode(image_url.removeprefix("data:image/png;base64,")) == png


def test_retries_server_errors_with_backoff(stub):
    stub.fail_first = 2
    start = time.monotonic()
    assert client(stub, max_retries=3).generate(ChatPrompt("s", "u")) == tagged_answer("u")
    assert [s for s, _, _ in stub.log] == [500, 500, 200]
    assert time.monotonic() - start >= 0.01 + 0.02  # backoff 0.01 s, then doubled


def test_retries_after_timeout(stub):
    stub.slow_first, stub.slow_s = 1, 1.5
    assert client(stub, timeout_s=0.3, max_retries=2).generate(ChatPrompt("s", "u")) == tagged_answer("u")
    assert len(stub.log) == 2


def test_gives_up_after_retries_and_does_not_retry_client_errors(stub):
    stub.fail_first = 100
    with pytest.raises(LLMRequestError, match="gave up after 3 attempts; last error: HTTP 500") as err:
        client(stub, max_retries=2).generate(ChatPrompt("s", "u"))
    assert err.value.transient and len(stub.log) == 3
    stub.log.clear()
    stub.fail_status = 400
    with pytest.raises(LLMRequestError, match="HTTP 400") as err:
        client(stub, max_retries=2).generate(ChatPrompt("s", "u"))
    assert not err.value.transient and len(stub.log) == 1


def test_unreachable_endpoint_is_transient():
    backend = OpenAIChatBackend("http://127.0.0.1:9/v1", "m", timeout_s=0.5, max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMRequestError, match="gave up after 2 attempts") as err:
        backend.generate(ChatPrompt("s", "u"))
    assert err.value.transient


def test_backend_from_env(monkeypatch, stub):
    monkeypatch.delenv("SAR_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("SAR_LLM_MODEL", raising=False)
    with pytest.raises(RuntimeError, match="set SAR_LLM_BASE_URL and SAR_LLM_MODEL"):
        OpenAIChatBackend.from_env()
    monkeypatch.setenv("SAR_LLM_BASE_URL", stub.url)
    monkeypatch.setenv("SAR_LLM_MODEL", "env-model")
    monkeypatch.delenv("SAR_LLM_API_KEY", raising=False)
    backend = OpenAIChatBackend.from_env(max_retries=0)
    assert backend.url == stub.url + "/chat/completions" and backend.api_key is None
    backend.generate(ChatPrompt("s", "u"))
    assert stub.log[0][1]["model"] == "env-model" and "Authorization" not in stub.log[0][2]


def test_cache_hits_keys_and_atomic_files(stub, tmp_path):
    llm = CachedLLM(client(stub), ResponseCache(tmp_path / "cache"))
    prompt = ChatPrompt("s", "u", b"image-1")
    assert llm.generate(prompt) == llm.generate(prompt) == tagged_answer("u")
    assert (llm.requests, llm.hits, len(stub.log)) == (1, 1, 1)
    llm.generate(ChatPrompt("s", "u", b"image-2"))
    assert len(stub.log) == 2
    assert len({cache_key(prompt, "a"), cache_key(prompt, "b"), cache_key(ChatPrompt("s", "u2", b"image-1"), "a")}) == 3
    assert cache_key(ChatPrompt("ab", "c"), "m") != cache_key(ChatPrompt("a", "bc"), "m")  # length-prefixed parts
    files = sorted((tmp_path / "cache").rglob("*"))
    json_files = [f for f in files if f.is_file()]
    assert len(json_files) == 2 and not [f for f in files if f.name.startswith(".tmp-")]
    record = json.loads((tmp_path / "cache" / cache_key(prompt, "stub-gpt")[:2] / f"{cache_key(prompt, 'stub-gpt')}.json").read_text())
    assert record["response"] == tagged_answer("u") and record["model"] == "stub-gpt"
    # A new process (new objects) over the same folder answers from disk.
    again = CachedLLM(client(stub), ResponseCache(tmp_path / "cache"))
    again.generate(prompt)
    assert (again.hits, again.requests, len(stub.log)) == (1, 0, 2)


def test_pipeline_end_to_end(stub, example_tif, tmp_path):
    llm = CachedLLM(client(stub), ResponseCache(tmp_path / "cache"))
    out = tmp_path / "geovl"
    report = build_geovl_dataset(
        [example_tif], out, llm, "terrain", SCALES_M, SensorInfo("Sentinel-1", "C", ("VV", "VH")), num_workers=2
    )
    assert report.tiles == {"large": 4, "medium": 16, "small": 64}
    assert report.border_windows_dropped == {"large": 5, "medium": 0, "small": 0}
    assert report.knn_skipped_groups == 1  # the 4 large tiles are too few for the KNN step
    assert report.parse_failed == [] and report.llm_refused == []
    for scale in ("large", "medium", "small"):
        accounted = report.rows[scale] + sum(report.quality_rejected[scale].values()) + report.skipped_parent_without_text[scale]
        assert accounted == report.tiles[scale]
    n_rows = sum(report.rows.values())
    assert report.llm_requests == len(stub.log) == n_rows and report.cache_hits == 0
    assert report.rows["small"] > 30

    ds = datasets.load_dataset(str(out), split="train")
    assert len(ds) == n_rows
    assert set(SUBTEXT_FIELDS) | {"image", "text", "center_lon", "center_lat", "crs", "transform", "scale"} <= set(ds.column_names)
    prompts = {digest(p["messages"][1]["content"][0]["text"]): p["messages"][1]["content"][0]["text"] for _, p, _ in stub.log}
    texts = dict(zip(ds["id"], ds["text"]))
    for row in ds:
        assert row["crs"] == "EPSG:32618" and row["pixel_size_m"] == [10.0, 10.0]
        assert row["lon_min"] < row["center_lon"] < row["lon_max"] and row["lat_min"] < row["center_lat"] < row["lat_max"]
        assert row["image"].size == (row["width"], row["height"]) and row["image"].mode == "RGB"
        assert row["transform"][2] == pytest.approx(611870.3605161788 + 10 * row["col_off"])
        h = row["geographic_context"].split(" of ")[1].rstrip(".")
        assert all(row[n] == f"{n} of {h}." for n in SUBTEXT_FIELDS)
        assert row["text"] == " ".join(row[n] for n in SUBTEXT_FIELDS)
        prompt = prompts[h]
        assert f"latitude {row['center_lat']:.5f}, longitude {row['center_lon']:.5f}" in prompt
        if row["scale"] == "large":
            assert row["parent_id"] is None and "enclosing" not in prompt
        else:  # T_M = f(S_M, T_L), T_S = f(S_S, T_M): the parent's text is in the child's prompt
            assert texts[row["parent_id"]] in prompt
    card = (out / "README.md").read_text()
    assert "task_categories" in card and "rows in total" in card
    assert json.loads((out / "report.json").read_text())["rows"] == report.rows


class CrashingBackend(OpenAIChatBackend):
    """The real client, with a crash (e.g. the process being killed) injected after ``k`` answers."""

    def __init__(self, k, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = k

    def generate(self, prompt):
        if self.left == 0:
            raise KeyboardInterrupt("injected crash")
        self.left -= 1
        return super().generate(prompt)


def test_crash_and_resume_requests_nothing_twice(stub, example_tif, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    crashing = CachedLLM(CrashingBackend(7, stub.url, "stub-gpt", backoff_s=0.01), cache)
    with pytest.raises(KeyboardInterrupt, match="injected crash"):
        build_geovl_dataset([example_tif], tmp_path / "out", crashing, "marine_target", SCALES_M)
    assert len(stub.log) == 7
    resumed = CachedLLM(client(stub), cache)
    report = build_geovl_dataset([example_tif], tmp_path / "out", resumed, "marine_target", SCALES_M)
    assert report.cache_hits == 7 and report.llm_requests == len(stub.log) - 7
    assert set(stub.ok_prompts().values()) == {1}  # no prompt was ever requested twice
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == sum(report.rows.values()) == len(stub.log)


def test_parse_failures_and_refusals_are_counted(stub, example_tif, tmp_path):
    def answer(user_text):
        if "MEDIUM-scale" in user_text and int(digest(user_text), 16) % 3 == 0:
            return tagged_answer(user_text).replace("<landform>", "").replace("</landform>", "")
        return tagged_answer(user_text)

    stub.answer = answer
    stub.refuse = lambda user_text: "SMALL-scale" in user_text and int(digest(user_text), 16) % 4 == 0
    llm = CachedLLM(client(stub), ResponseCache(tmp_path / "cache"))
    report = build_geovl_dataset([example_tif], tmp_path / "out", llm, "ground_target", SCALES_M)
    assert report.parse_failed and report.llm_refused and report.skipped_parent_without_text["small"] > 0
    assert all("_M_" in item and f"item '{item}': LLM answer lacks field <landform>" in error for item, error in report.parse_failed)
    assert all("_S_" in item and "HTTP 400" in error for item, error in report.llm_refused)
    failed = {item for item, _ in report.parse_failed + report.llm_refused}
    for scale in ("large", "medium", "small"):
        lost = sum(1 for item in failed if f"_{scale[0].upper()}_" in item)
        accounted = (
            report.rows[scale] + sum(report.quality_rejected[scale].values()) + report.skipped_parent_without_text[scale] + lost
        )
        assert accounted == report.tiles[scale]
    ids = set(datasets.load_dataset(str(tmp_path / "out"), split="train")["id"])
    assert not ids & failed


def test_cli_caption_and_rerun_from_cache(stub, example_tif, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAR_LLM_BASE_URL", stub.url)
    monkeypatch.setenv("SAR_LLM_MODEL", "stub-gpt")
    args = ["caption", str(example_tif), "--out", str(tmp_path / "cli"), "--task", "terrain", "--scales", "2000,1000,500",
            "--workers", "2", "--polarisations", "VV,VH", "--place", "Long Island, New York"]
    cli_main(args)
    first = capsys.readouterr().out
    n_requests = len(stub.log)
    assert "LLM requests" in first and n_requests > 0
    assert "Long Island, New York" in stub.log[0][1]["messages"][1]["content"][0]["text"]
    cli_main(args)
    assert len(stub.log) == n_requests and f"cache hits {n_requests}" in capsys.readouterr().out
    assert len(datasets.load_dataset(str(tmp_path / "cli"), split="train")) == n_requests


@pytest.fixture(scope="module")
def tiny_local_model(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level BPE tokenizer trained offline on HCoT prompts, saved to disk."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from dataset_scripts.geovl.hcot import HCoTTask, TileContext

    context = TileContext((-73.67, 40.76), (-73.68, 40.75, -73.66, 40.77), (10.0, 10.0), (200, 200))
    corpus = [build_hcot_prompt(context, task, "large").user for task in HCoTTask] + [tagged_answer("x")]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=2048, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    path = tmp_path_factory.mktemp("tiny_gpt2")
    tokenizer.save_pretrained(path)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def test_local_transformers_backend(tiny_local_model, example_tif, tmp_path):
    backend = TransformersTextBackend(tiny_local_model, max_new_tokens=8)
    assert backend.model_id == f"local:{tiny_local_model.resolve()}"
    prompt = ChatPrompt("You are a SAR interpreter.", "Describe the SAR image.")
    first = backend.generate(prompt)
    assert isinstance(first, str) and first == backend.generate(prompt)  # greedy: deterministic
    llm = CachedLLM(backend, ResponseCache(tmp_path / "cache"))
    # A random model cannot follow the format: the single large tile fails to parse, so its children
    # are skipped, and the report says so.
    report = build_geovl_dataset([example_tif], tmp_path / "out", llm, "terrain", (2000.0, 1000.0, 500.0))
    assert report.tiles == {"large": 1, "medium": 4, "small": 16}
    assert [item for item, _ in report.parse_failed] == ["example_L_0_0"]
    assert "lacks field <geographic_context>" in report.parse_failed[0][1]
    assert report.skipped_parent_without_text["medium"] == 4 - sum(report.quality_rejected["medium"].values())
    assert sum(report.rows.values()) == 0 and llm.requests == 1
    # The shard is still written, empty but with the full schema (datasets 5.2 refuses to load a dataset
    # whose only split has no rows: "Instruction 'train' corresponds to no data").
    shard = pq.read_table(tmp_path / "out" / "data" / "train-00000-of-00001.parquet")
    assert shard.num_rows == 0 and set(SUBTEXT_FIELDS) | {"image", "text"} <= set(shard.column_names)
