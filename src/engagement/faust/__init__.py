"""What the Faust workers (scorer, notifier) share: settings, app, run loop, ops views, the
batch failure policy and a fast path over faust-streaming (README.md: its private internals)."""
