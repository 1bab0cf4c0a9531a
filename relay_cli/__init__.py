"""`relay`: operate a clay-relay stack, deployed (by stack name and region) or local (`--local`)."""


class CommandError(RuntimeError):
    """A command could not do what it was asked: printed as `relay: error: …`, exit status 1."""
