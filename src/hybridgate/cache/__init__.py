"""The response cache (layer 4 of the flow): exact and semantic, namespaced by tenant.

``build_cache`` turns the ``[cache]`` section into a ``ResponseCache`` over the chosen store.
The semantic matcher (an embedder plus guards against near-miss questions) is built only when a
route asks for it: loading the embedding model costs start-up time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hybridgate.cache.embeddings import VectorCache
from hybridgate.cache.entry import CachedAnswer, replay_chunks
from hybridgate.cache.keys import CacheKeys, Directive, cache_keys, parse_directive, tenant_of
from hybridgate.cache.memory import CacheStore, MemoryStore, SemanticNote
from hybridgate.cache.response_cache import CacheResult, Hit, Lookup, ResponseCache
from hybridgate.config import CacheConfig, GatewayConfig, RedisConfig

if TYPE_CHECKING:
    from hybridgate.stores.redis import RedisCircuit

__all__ = [
    "CacheKeys",
    "CacheResult",
    "CacheStore",
    "CachedAnswer",
    "Directive",
    "Hit",
    "Lookup",
    "MemoryStore",
    "ResponseCache",
    "SemanticNote",
    "VectorCache",
    "build_cache",
    "build_vector_cache",
    "cache_keys",
    "parse_directive",
    "replay_chunks",
    "tenant_of",
]


def build_cache(
    config: GatewayConfig, env: Mapping[str, str], circuit: RedisCircuit | None = None
) -> ResponseCache | None:
    """The response cache; ``circuit``: Redis's health as other components of the process see it."""
    if config.cache is None:
        return None
    store = _store(config.cache, config.redis, env, circuit)
    if not config.cache.semantic_routes:
        return ResponseCache(config.cache, store)
    from hybridgate.cache.semantic import SemanticMatcher, VectorIndex
    from hybridgate.embedder import WordLlamaEmbedder

    matcher = SemanticMatcher(WordLlamaEmbedder(), config.cache.semantic_threshold)
    return ResponseCache(config.cache, store, matcher, VectorIndex(max_entries=config.cache.max_entries))


def build_vector_cache(
    config: GatewayConfig, env: Mapping[str, str], circuit: RedisCircuit | None = None
) -> VectorCache | None:
    """The embeddings' per-text cache: the same kind of store as the response cache, its own entries."""
    embeddings = config.embeddings
    if (
        embeddings is None
        or not embeddings.cache
        or (config.cache is None and embeddings.cache_store is None)
    ):
        return None
    base = config.cache or CacheConfig()
    timeout_s = base.timeout_s
    if embeddings.cache_store == "postgres":
        assert config.postgres is not None  # the config validator insists on a [postgres] section
        from hybridgate.cache.postgres import PostgresStore

        server = config.postgres
        password = env.get(server.password_env) if server.password_env else None
        store = PostgresStore(server.dsn, password=password, timeout_s=timeout_s, pool_size=server.pool_size)
        return VectorCache(store, embeddings.cache_ttl_s, timeout_s)
    sized = base.model_copy(
        update={
            "store": embeddings.cache_store or base.store,
            "path": embeddings.cache_path,
            "max_entries": embeddings.cache_max_entries,
            "max_store_bytes": embeddings.cache_max_bytes,
        }
    )
    return VectorCache(_store(sized, config.redis, env, circuit), embeddings.cache_ttl_s, timeout_s)


def _store(
    cache: CacheConfig, redis: RedisConfig | None, env: Mapping[str, str], circuit: RedisCircuit | None
) -> CacheStore:
    if cache.store == "sqlite":
        from hybridgate.cache.sqlite import SqliteStore

        return SqliteStore(cache.path, cache.max_entries)
    if cache.store == "redis":
        assert redis is not None  # the config validator insists on a [redis] section
        from hybridgate.cache.redis import RedisStore
        from hybridgate.stores.redis import redis_client

        return RedisStore(redis_client(redis, env, circuit), redis.key_prefix, cache.max_entries)
    return MemoryStore(cache.max_entries, cache.max_store_bytes)
