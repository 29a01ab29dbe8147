"""Pluggable LLM backends for HCoT captioning, and a crash-safe on-disk response cache.

- ``OpenAIChatBackend``: any OpenAI-compatible ``/chat/completions`` endpoint (the paper used GPT-4.1),
  configured from ``SAR_LLM_BASE_URL``, ``SAR_LLM_MODEL``, ``SAR_LLM_API_KEY``; retries transient
  failures (timeouts, connection errors, HTTP 408/429/5xx) with exponential backoff. Credentials in the base
  URL (``https://user:token@host``) are sent as HTTP Basic auth and never appear in messages.
- ``TransformersTextBackend``: a local ``transformers`` text-generation model loaded from a folder.
  It is text-only: it sees the HCoT prompt but not the image.
- ``ResponseCache`` / ``CachedLLM``: one JSON file per response, keyed by
  sha256(image bytes + prompt + model), written atomically (temp file + ``os.replace``), so a crashed
  run loses nothing and a rerun requests only what is missing. A damaged entry (truncated json, no
  ``response``) is reported by name (a logged warning, ``ResponseCache.corrupt``) and requested again.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

ENV_BASE_URL = "SAR_LLM_BASE_URL"
ENV_MODEL = "SAR_LLM_MODEL"
ENV_API_KEY = "SAR_LLM_API_KEY"
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatPrompt:
    """A system + user message, optionally with one PNG image attached to the user message."""

    system: str
    user: str
    image_png: bytes | None = None


class LLMBackend(Protocol):
    model_id: str

    def generate(self, prompt: ChatPrompt) -> str: ...


class LLMRequestError(RuntimeError):
    """A request failed. ``transient`` is True when retries were exhausted on a transient failure."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


def split_credentials(url: str) -> tuple[str, str | None]:
    """(``url`` without its ``user:password@`` part, that part percent-decoded, or None)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    credentials = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), credentials


@dataclass
class OpenAIChatBackend:
    """Client of an OpenAI-compatible chat-completions endpoint (``{base_url}/chat/completions``).

    ``user:password@`` in ``base_url`` becomes an HTTP Basic ``Authorization`` header (``api_key``, sent as a Bearer
    token, wins over it); ``url`` and every message hold the address without it (neither is in the repr).
    """

    base_url: str = field(repr=False)
    model_id: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    temperature: float = 0.2
    max_tokens: int = 2048

    def __post_init__(self):
        base_url, credentials = split_credentials(self.base_url.rstrip("/"))
        self.url = base_url + "/chat/completions"
        self.basic_auth = base64.b64encode(credentials.encode()).decode("ascii") if credentials else None

    @classmethod
    def from_env(cls, **kwargs) -> "OpenAIChatBackend":
        """Endpoint and model from ``SAR_LLM_BASE_URL`` / ``SAR_LLM_MODEL``; key from ``SAR_LLM_API_KEY`` (optional)."""
        missing = [name for name in (ENV_BASE_URL, ENV_MODEL) if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"set {' and '.join(missing)} to use the OpenAI-compatible LLM backend")
        return cls(os.environ[ENV_BASE_URL], os.environ[ENV_MODEL], os.environ.get(ENV_API_KEY) or None, **kwargs)

    def payload(self, prompt: ChatPrompt) -> dict:
        user_content: list[dict] = [{"type": "text", "text": prompt.user}]
        if prompt.image_png is not None:
            url = "data:image/png;base64," + base64.b64encode(prompt.image_png).decode("ascii")
            user_content.append({"type": "image_url", "image_url": {"url": url}})
        return {
            "model": self.model_id,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": user_content},
            ],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def generate(self, prompt: ChatPrompt) -> str:
        body = json.dumps(self.payload(prompt)).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif self.basic_auth:
            headers["Authorization"] = f"Basic {self.basic_auth}"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return _message_content(response.read(), self.url)
            except urllib.error.HTTPError as err:
                detail = err.read()[:500].decode("utf-8", "replace")
                if err.code not in _TRANSIENT_HTTP:
                    raise LLMRequestError(f"{self.url}: HTTP {err.code}: {detail}", transient=False) from err
                last_error = f"HTTP {err.code}: {detail}"
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
                last_error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        raise LLMRequestError(
            f"{self.url}: gave up after {self.max_retries + 1} attempts; last error: {last_error}", transient=True
        )


def _message_content(raw: bytes, url: str) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise LLMRequestError(f"{url}: not a chat-completions response: {raw[:300]!r}", transient=False) from err
    if not isinstance(content, str):
        raise LLMRequestError(f"{url}: message content is {type(content).__name__}, not text", transient=False)
    return content


class TransformersTextBackend:
    """A local ``transformers`` text-generation model (greedy decoding). Text-only: the image is not used."""

    def __init__(self, model_path: str | Path, max_new_tokens: int = 1024, device: str | int | None = None):
        from transformers import pipeline

        self.model_id = f"local:{Path(model_path).resolve()}"
        self.max_new_tokens = max_new_tokens
        self._pipe = pipeline("text-generation", model=str(model_path), device=device)

    def generate(self, prompt: ChatPrompt) -> str:
        if self._pipe.tokenizer.chat_template:
            inputs = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        else:
            inputs = f"{prompt.system}\n\n{prompt.user}\n\n"
        out = self._pipe(inputs, max_new_tokens=self.max_new_tokens, do_sample=False, return_full_text=False)
        generated = out[0]["generated_text"]
        return generated if isinstance(generated, str) else generated[-1]["content"]


def cache_key(prompt: ChatPrompt, model_id: str) -> str:
    """sha256 over the image bytes, the prompt and the model id (each length-prefixed, so unambiguous)."""
    digest = hashlib.sha256()
    for part in (prompt.image_png or b"", prompt.system.encode(), prompt.user.encode(), model_id.encode()):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


class ResponseCache:
    """LLM responses on disk: ``<dir>/<key[:2]>/<key>.json``, each written atomically.

    ``corrupt`` lists the damaged entries met by ``get`` (each also logged as a warning naming the file); they count
    as missing, so the response is requested again and ``put`` replaces the file.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.corrupt: list[Path] = []

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            response = json.loads(path.read_text(encoding="utf-8"))["response"]
            if not isinstance(response, str):
                raise TypeError(f"response is {type(response).__name__}, not text")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as err:  # truncated or damaged json, no "response", not text
            logger.warning("%s: corrupt LLM cache entry (%s: %s); requesting it again", path, type(err).__name__, err)
            self.corrupt.append(path)
            return None
        return response

    def put(self, key: str, model_id: str, response: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"key": key, "model": model_id, "response": response}, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CachedLLM:
    """A backend behind a ``ResponseCache``; counts cache hits and backend requests."""

    def __init__(self, backend: LLMBackend, cache: ResponseCache):
        self.backend = backend
        self.cache = cache
        self.hits = 0
        self.requests = 0
        self._lock = threading.Lock()

    def generate(self, prompt: ChatPrompt) -> str:
        key = cache_key(prompt, self.backend.model_id)
        cached = self.cache.get(key)
        if cached is not None:
            with self._lock:
                self.hits += 1
            return cached
        with self._lock:
            self.requests += 1
        response = self.backend.generate(prompt)
        self.cache.put(key, self.backend.model_id, response)
        return response
