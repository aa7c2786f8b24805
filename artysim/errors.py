"""Exception hierarchy: everything a user can cause is an ``ArtysimError`` (exit code 2)."""


class ArtysimError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits with status 2."""


class ScenarioError(ArtysimError):
    """A scenario file (or a --set override) is invalid; the message names the key path."""


class ResultsError(ArtysimError):
    """A results file is missing, foreign, truncated or incompatible."""


class OutputExistsError(ArtysimError):
    """Refusing to overwrite an existing results file without --force."""
