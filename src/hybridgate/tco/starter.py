"""A starter hybridgate config for each recommendation of ``hybridgate decide``.

Offline and pure: returns TOML text that ``hybridgate.config.GatewayConfig`` accepts (a test
checks every one), with comments saying what to change. Models and endpoints are examples.
Everything ``decide`` recommends is in it: a pin on every remote backend (a dated model id, so an
upstream change is drift, not a surprise), ``[auth]`` on, and the ``[privacy]`` policy the data
step asked for.
"""

from __future__ import annotations

_HEADER = """\
# Starter hybridgate config for: {title}
# Written by `hybridgate decide`. Check models, endpoints and prices, then
# `hybridgate serve --config THIS_FILE`. Secrets stay in the environment variables named here.

[ledger]
path = "hybridgate.db"
log_prompts = false

[auth]
enabled = true                      # callers need a virtual key: `hybridgate keys create`
"""

_PRIVACY = """
[privacy]
policy = "{policy}"
"""

_CLOSED_API = """
[backends.openai]
type = "openai_compat"
model = "gpt-4o-mini"
pin = "gpt-4o-mini-2024-07-18"      # the dated snapshot you tested; sent upstream instead of model
api_key_env = "OPENAI_API_KEY"
provider = "openai"

[backends.claude]
type = "anthropic"
model = "claude-sonnet-4-5"
pin = "claude-sonnet-4-5-20250929"
api_key_env = "ANTHROPIC_API_KEY"

[routes.auto]
try = ["openai", "claude"]          # the second provider is the fallback
"""

_ENTERPRISE_ZDR = """
# Point base_url at your enterprise endpoint (e.g. an Azure OpenAI or Bedrock-compatible proxy)
# covered by a zero-data-retention agreement and a DPA.
[backends.enterprise]
type = "openai_compat"
base_url = "https://YOUR-ENTERPRISE-ENDPOINT.example/v1"
model = "gpt-4o"
pin = "gpt-4o-2024-08-06"           # your deployment's exact model version
api_key_env = "ENTERPRISE_API_KEY"
price = { input_per_mtok = 2.5, output_per_mtok = 10.0 }   # your contract's prices

[routes.auto]
try = ["enterprise"]
"""

_MANAGED_OPEN_WEIGHTS = """
# An open-weights model run by a provider (Together, Fireworks, Groq, ...); fine-tuned adapters
# are served under their own model names.
[backends.managed]
type = "openai_compat"
base_url = "https://api.together.xyz/v1"
model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
pin = "meta-llama/Llama-3.3-70B-Instruct-Turbo"   # the provider's exact model id
api_key_env = "TOGETHER_API_KEY"
price = { input_per_mtok = 0.88, output_per_mtok = 0.88 }

[backends.frontier]
type = "openai_compat"
model = "gpt-4o-mini"
pin = "gpt-4o-mini-2024-07-18"      # the dated snapshot you tested; sent upstream instead of model
api_key_env = "OPENAI_API_KEY"
provider = "openai"

[routes.auto]
try = ["managed", "frontier"]
"""

_SELF_HOST = """
# A vLLM (or llama.cpp server) you run; price it so the ledger values local tokens for TCO:
# see `hybridgate tco` for the effective $/Mtok of your GPUs.
[backends.vllm]
type = "openai_compat"
base_url = "http://127.0.0.1:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"
local = true
pin = "Qwen/Qwen2.5-7B-Instruct"    # the exact revision you tested
price = { input_per_mtok = 0.10, output_per_mtok = 0.10 }

[backends.embedded]                 # in-process fallback when the GPU server is down
type = "embedded"
# pin = "sha256 of the GGUF file"   # `sha256sum FILE` once downloaded: pins the weights

[routes.auto]
try = ["vllm", "embedded"]
"""

_HYBRID = """
[backends.local]                    # replace with your vLLM server (type = "openai_compat", local = true)
type = "embedded"
# pin = "sha256 of the GGUF file"   # `sha256sum FILE` once downloaded: pins the weights

[backends.frontier]
type = "openai_compat"
model = "gpt-4o-mini"
pin = "gpt-4o-mini-2024-07-18"      # the dated snapshot you tested; sent upstream instead of model
api_key_env = "OPENAI_API_KEY"
provider = "openai"

[routes.auto]
try = ["local", "frontier"]
cascade = true                      # answer locally first; escalate when checks fail

[routes.frontier]
try = ["frontier", "local"]

[[rules]]
name = "long-prompt"
min_prompt_tokens = 2000
route = "frontier"

[[rules]]
name = "images-need-vision"
has_images = true
route = "frontier"
"""

_BODIES = {
    "closed_api": _CLOSED_API,
    "enterprise_zdr": _ENTERPRISE_ZDR,
    "managed_open_weights": _MANAGED_OPEN_WEIGHTS,
    "self_host": _SELF_HOST,
    "hybrid": _HYBRID,
}


def starter_config(choice: str, title: str, *, privacy: str | None = None) -> str:
    """TOML for ``choice`` (a key of ``tco.decide.CHOICES``), with ``[privacy] policy = privacy``
    when given."""
    try:
        body = _BODIES[choice]
    except KeyError:
        raise ValueError(f"no starter config for '{choice}'; known: {', '.join(_BODIES)}") from None
    section = "" if privacy is None else _PRIVACY.format(policy=privacy)
    return _HEADER.format(title=title) + section + body
