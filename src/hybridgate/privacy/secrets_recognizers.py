"""Presidio pattern recognizers for credentials that must never reach a cloud provider.

Part of the privacy layer under the pipeline: ``detect.py`` registers these beside Presidio's
own recognizers. Pure regex plus cheap validation; nothing here performs I/O or logs a match.

Each recognizer is case-sensitive on purpose: Presidio compiles patterns with IGNORECASE by
default, which would turn ``AKIA[A-Z0-9]{16}`` into a match for ordinary lowercase words.
"""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

API_KEY = "API_KEY"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY"
GITHUB_TOKEN = "GITHUB_TOKEN"
PRIVATE_KEY = "PRIVATE_KEY"
BEARER_TOKEN = "BEARER_TOKEN"

SECRET_ENTITIES = (API_KEY, AWS_ACCESS_KEY, GITHUB_TOKEN, PRIVATE_KEY, BEARER_TOKEN)

_FLAGS = re.MULTILINE
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"[0-9]")


class _SecretRecognizer(PatternRecognizer):
    """A case-sensitive pattern recognizer that only runs when one of its triggers is present.

    Every secret format has a fixed marker ("sk-", "AKIA", "-----BEGIN"); a substring test for
    it costs microseconds, while the regexes would cost up to a millisecond per prompt.
    """

    def __init__(
        self, entity: str, patterns: list[Pattern], context: list[str], triggers: tuple[str, ...]
    ) -> None:
        super().__init__(
            supported_entity=entity,
            patterns=patterns,
            context=context,
            supported_language="en",
            global_regex_flags=_FLAGS,
        )
        self._triggers = triggers

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        if not any(trigger in text for trigger in self._triggers):
            return []
        return super().analyze(text, entities, nlp_artifacts, regex_flags)


class ApiKeyRecognizer(_SecretRecognizer):
    """Provider API keys with a recognisable prefix: OpenAI/Anthropic ``sk-``, Google, Slack."""

    def __init__(self) -> None:
        super().__init__(
            API_KEY,
            [
                Pattern("sk key", r"\bsk-(?:[A-Za-z]+-)*[A-Za-z0-9_\-]{20,}", 0.8),
                Pattern("google api key", r"\bAIza[0-9A-Za-z_\-]{35}\b", 0.9),
                Pattern("slack token", r"\bxox[abposr]-[0-9A-Za-z\-]{10,}", 0.9),
            ],
            ["key", "api", "token", "secret"],
            ("sk-", "AIza", "xox"),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        # Random keys mix letters and digits; ``sk-`` followed by a long hyphenated phrase
        # of plain words does not.
        body = pattern_text[3:] if pattern_text.startswith("sk-") else pattern_text
        return bool(_LETTER.search(body) and _DIGIT.search(body))


class AwsAccessKeyRecognizer(_SecretRecognizer):
    """AWS access key ids: long-term (AKIA) and temporary (ASIA)."""

    def __init__(self) -> None:
        super().__init__(
            AWS_ACCESS_KEY,
            [Pattern("aws access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", 0.9)],
            ["aws", "access", "key"],
            ("AKIA", "ASIA"),
        )


class GithubTokenRecognizer(_SecretRecognizer):
    """GitHub personal, OAuth, app and refresh tokens, classic and fine-grained."""

    def __init__(self) -> None:
        super().__init__(
            GITHUB_TOKEN,
            [
                Pattern("github token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", 0.95),
                Pattern("github fine-grained pat", r"\bgithub_pat_[A-Za-z0-9_]{22,}\b", 0.95),
            ],
            ["github", "token"],
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        )


class PrivateKeyRecognizer(_SecretRecognizer):
    """PEM private key blocks (RSA, EC, OpenSSH, PKCS#8, encrypted), header to footer."""

    def __init__(self) -> None:
        label = r"(?:[A-Z0-9]+ )*PRIVATE KEY"
        super().__init__(
            PRIVATE_KEY,
            # [\s\S] instead of DOTALL keeps the flag set minimal; the lazy body stops at the
            # first footer so two keys in one text stay two findings.
            [Pattern("pem private key", rf"-----BEGIN {label}-----[\s\S]*?-----END {label}-----", 1.0)],
            ["key", "private"],
            ("-----BEGIN",),
        )


class BearerTokenRecognizer(_SecretRecognizer):
    """Tokens after ``Bearer`` (as in an Authorization header) and bare JWTs."""

    def __init__(self) -> None:
        super().__init__(
            BEARER_TOKEN,
            [
                # Presidio matches with the ``regex`` module: \K starts the reported span
                # after the word "Bearer", which itself is no secret.
                Pattern("bearer token", r"\b(?i:bearer)[ \t]+\K[A-Za-z0-9\-._~+/]{16,}=*", 0.8),
                Pattern("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0.9),
            ],
            ["authorization", "bearer", "token"],
            ("earer", "EARER", "eyJ"),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return bool(_DIGIT.search(pattern_text) or "." in pattern_text or "-" in pattern_text)


def secret_recognizers() -> list[PatternRecognizer]:
    """Fresh instances of every secret recognizer, for one detector's registry."""
    return [
        ApiKeyRecognizer(),
        AwsAccessKeyRecognizer(),
        GithubTokenRecognizer(),
        PrivateKeyRecognizer(),
        BearerTokenRecognizer(),
    ]
