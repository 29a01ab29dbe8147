"""The LLM response cache with damaged entries, and credentials in an LLM base URL."""

import base64
import json
import logging
import urllib.error
import urllib.request

import pytest

from dataset_scripts.geovl.llm import CachedLLM, ChatPrompt, LLMRequestError, OpenAIChatBackend, ResponseCache

PROMPT = ChatPrompt("system text", "user text", b"\x89PNG tile")


class CountingBackend:
    model_id = "counting"

    def __init__(self):
        self.calls = 0

    def generate(self, prompt: ChatPrompt) -> str:
        self.calls += 1
        return f"answer {self.calls} to {prompt.user}"


DAMAGES = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "no response": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "response"}),
    "response not text": lambda text: json.dumps({**json.loads(text), "response": ["a", "b"]}),
    "not an object": lambda text: json.dumps([json.loads(text)]),
    "not utf-8": lambda text: "\udcff",
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_corrupt_entry_is_named_and_requested_again(tmp_path, caplog, damage):
    first = CountingBackend()
    assert CachedLLM(first, ResponseCache(tmp_path)).generate(PROMPT) == "answer 1 to user text"
    (entry,) = tmp_path.rglob("*.json")
    damaged = DAMAGES[damage](entry.read_text(encoding="utf-8"))
    entry.write_bytes(damaged.encode("utf-8", "surrogateescape"))

    backend, cache = CountingBackend(), ResponseCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dataset_scripts.geovl.llm"):
        assert CachedLLM(backend, cache).generate(PROMPT) == "answer 1 to user text"
    assert backend.calls == 1 and cache.corrupt == [entry]
    assert f"{entry}: corrupt LLM cache entry" in caplog.text and "requesting it again" in caplog.text
    assert json.loads(entry.read_text())["response"] == "answer 1 to user text"  # replaced atomically
    again = CachedLLM(CountingBackend(), ResponseCache(tmp_path))
    assert again.generate(PROMPT) == "answer 1 to user text" and (again.hits, again.requests) == (1, 0)


def test_credentials_in_the_base_url_are_sent_as_basic_auth_and_never_shown(monkeypatch):
    backend = OpenAIChatBackend("https://alice:s3cret%21@llm.example:8443/v1/", "m", max_retries=1, backoff_s=0)
    assert backend.url == "https://llm.example:8443/v1/chat/completions"
    sent = []

    def unreachable(request, timeout):
        sent.append((request.full_url, request.get_header("Authorization")))
        raise urllib.error.URLError("name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(LLMRequestError) as failure:
        backend.generate(PROMPT)
    assert "s3cret" not in str(failure.value) and "alice" not in str(failure.value)
    assert str(failure.value).startswith("https://llm.example:8443/v1/chat/completions: gave up after 2 attempts")
    basic = "Basic " + base64.b64encode(b"alice:s3cret!").decode()
    assert sent == [("https://llm.example:8443/v1/chat/completions", basic)] * 2
    with_key = OpenAIChatBackend("https://alice:s3cret@llm.example/v1", "m", api_key="sk-1", max_retries=0)
    sent.clear()
    with pytest.raises(LLMRequestError):
        with_key.generate(PROMPT)
    assert sent == [("https://llm.example/v1/chat/completions", "Bearer sk-1")]
