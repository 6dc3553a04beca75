"""The embedded local model: the backend (``backend``), the engine process it talks to
(``process``, ``engine``, run as ``python -m hybridgate.backends.embedded.engine``), the llama.cpp
binding (``llama``), prompts (``prompt``) and JSON-Schema grammars (``grammar``)."""
