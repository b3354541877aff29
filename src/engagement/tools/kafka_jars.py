"""Apache Kafka's jars for tests and the dev stack: fetched once from Maven Central into a cache.

``deploy/kafka/pom.xml`` names the broker (``org.apache.kafka:kafka_2.13``); ``fetch`` copies its
jars with their dependencies into a cache directory (``ENGAGEMENT_KAFKA_CACHE``, default
``~/.cache/engagement/kafka-<version>``), which ``engagement.tools.local_kafka`` runs them from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from engagement.tools.localstack import LocalServiceError

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "kafka"


def kafka_version() -> str:
    """Return the Kafka version ``deploy/kafka/pom.xml`` names."""
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", _pom().read_text())
    if found is None:
        raise LocalServiceError(f"{_pom()} names no <kafka.version>")
    return found.group(1).strip()


def cache_dir() -> Path:
    """Where the broker's jars are kept: ``ENGAGEMENT_KAFKA_CACHE``, else the user's cache."""
    configured = os.environ.get("ENGAGEMENT_KAFKA_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "engagement" / f"kafka-{kafka_version()}"


def fetched(cache: Path | None = None) -> bool:
    """Whether the cache holds a complete copy of the broker's jars."""
    return ((cache or cache_dir()) / "lib" / "COMPLETE").exists()


def fetch(cache: Path | None = None) -> Path:
    """Copy the broker's jars from Maven Central into the cache once; return the cache.

    Safe to race: each fetch fills a directory of its own and the first to finish renames it
    into place."""
    cache = cache or cache_dir()
    if fetched(cache):
        return cache
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServiceError("Apache Kafka is fetched with Maven: install maven (and Java 17+)")
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=cache))
    try:
        _copy_dependencies(mvn, staging)
        (staging / "COMPLETE").write_text(kafka_version() + "\n")
        try:
            staging.rename(cache / "lib")
        except OSError:  # another fetch finished first
            if not fetched(cache):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def _copy_dependencies(mvn: str, into: Path) -> None:
    args = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(_pom()),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={into}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalServiceError(f"fetching Apache Kafka failed:\n{done.stdout}{done.stderr}")


def _pom() -> Path:
    pom = DEPLOY_DIR / "pom.xml"
    if not pom.exists():
        raise LocalServiceError(f"no {pom}: Apache Kafka runs from a checkout of the project")
    return pom


def java_binary() -> str:
    """Return the ``java`` to run the broker with (``JAVA_HOME`` first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    on_path = shutil.which("java")
    if on_path is None:
        raise LocalServiceError("Apache Kafka needs Java 17+: install a JDK (openjdk-17)")
    return on_path
