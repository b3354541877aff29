"""``engagement dev``: the whole pipeline on one machine, with demo traffic and a live view."""
