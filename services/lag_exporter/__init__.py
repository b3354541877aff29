"""``engagement lag-exporter``: the consumer groups' lag as the broker sees it, for Prometheus."""
