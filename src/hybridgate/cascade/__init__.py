"""Try backends in order and keep the first acceptable answer (``core``): the answer checks
(``checks``) and the protection around each call (``resilience``: breaker, admission, retries)."""
