"""The world-action model: transformer backbone, heads, Q ensemble and KV cache."""

from jowa.model.kv_cache import KVCache
from jowa.model.world_model import WorldActionModel, WorldModelOutput

__all__ = ["KVCache", "WorldActionModel", "WorldModelOutput"]
