"""The one exception type users see: bad input, reported as a single line with exit code 2."""


class PrerecError(Exception):
    """Bad input or a problem the user can fix (missing file, wrong column, bad config).

    The CLI prints ``prerec: error: <message>`` and exits with code 2; the message must name
    the file, row or field and say what was expected.
    """
