"""The pure domain: what an event is worth, how scores decay, tiers, identity merges, alerts.

No IO (import-linter forbids every IO library here): time comes in as numbers, state as values,
and decisions go out as values. The store's Lua scripts compute the same formulas
(``scoring``); ``tests/unit/engagement/model`` pins them.
"""
