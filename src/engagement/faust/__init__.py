"""What the Faust workers (scorer, notifier) share: settings, app construction, ops views, runner."""
