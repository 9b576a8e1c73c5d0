"""The one exception the dev cluster raises.

The CLI prints its message and exits 1, so every message must say what went wrong and what the
user can do about it; a traceback is never the interface.
"""


class DevClusterError(Exception):
    """A dev-cluster operation failed; ``str(err)`` is meant for the user, as is."""
