"""Candidate engagement scoring: the shared domain package.

Pure modules (no IO): ``topics``, ``cloudevents``, ``envelope``, ``timestamps``, ``privacy``,
``rules``, ``scoring``, ``tiers``, ``score_records``. Adapters shared by more than one service:
``settings``, ``kafka_admin``, ``redis_store`` (split into ``store_jobs``, ``merge_store``,
``pending_erasure``, ``rank_reads``), ``localstack``.
"""

__version__ = "0.1.0"
