"""Candidate engagement scoring: the shared domain package.

Pure modules (no IO): ``topics``, ``cloudevents``, ``envelope``, ``timestamps``, ``privacy``,
``rules``, ``scoring``, ``tiers``. Adapters shared by more than one service: ``settings``,
``kafka_admin``, ``redis_store``, ``localstack``.
"""

__version__ = "0.1.0"
