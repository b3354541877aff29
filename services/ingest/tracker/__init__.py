"""The browser tracker (tracker.js) and the route that serves it."""

from services.ingest.tracker.router import TRACKER_VERSION, router

__all__ = ["TRACKER_VERSION", "router"]
