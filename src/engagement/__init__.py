"""Candidate engagement scoring: the package the services share (docs/architecture.md).

The tree is the architecture; each package imports only those below it (``make lint`` checks it
with import-linter):

- ``tools``: developer and operator tools (dev stack, local Redis and Kafka, rebuild, rules
  check, DLQ replay), started by ``engagement.cli``; nothing imports them.
- ``services`` (beside this package): ingest, scorer, notifier, lag exporter; never each other.
- ``faust``: the workers' plumbing over faust-streaming.
- ``store`` (Redis and its Lua scripts) and ``kafka`` (topics, keys, headers, record encodings,
  admin): the adapters; neither knows the other.
- ``model``: the pure domain (scoring, tiers, rules, identity, alerts, records); no IO.
"""

__version__ = "0.1.0"
