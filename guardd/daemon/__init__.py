"""``guardd run``: the daemon's lifecycle, schedule and HTTP side; it only wires services together."""
