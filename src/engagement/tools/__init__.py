"""Developer and operator tools behind ``engagement <command>`` (``engagement.cli``): the dev
stack, local Redis and Apache Kafka, rebuild, ``rules check`` and DLQ replay. Nothing in the
services or the shared package imports them."""
