"""The one exception type for problems the user can fix."""


class DecodingInputError(ValueError):
    """Input the user can fix: a wrong file, a missing column, too few runs.

    The message says what is wrong and what to do about it. Pages show it
    with ``st.error``; the command line prints it on one line and exits 2.
    """


class DecodingInputTypeError(DecodingInputError, TypeError):
    """An argument of the wrong type; both a `DecodingInputError` and a ``TypeError``."""
