"""Exceptions that carry a Chinese message for the user and mean exit code 2."""


class NianbaoError(Exception):
    """A problem that stops a command from running (exit code 2)."""


class SpecError(NianbaoError):
    """The format definition in templates/ is broken."""


class RosterError(NianbaoError):
    """The roster file cannot be used."""
