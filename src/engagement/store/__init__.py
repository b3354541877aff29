"""The Redis store: candidate profiles, rank sets, merges, erasure, and the Lua scripts in
``lua/`` that change them atomically (key layout: ``redis_keys``). Knows no Kafka."""
