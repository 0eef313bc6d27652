"""Errors of the stage contract that the engine and the Dagster layer act on."""


class StageInputError(ValueError):
    """Bad input data, config or wiring: re-running the same thing cannot help, so it is never retried.

    Stages raise a subclass (the message names the file, stage and field); the Dagster layer turns it into a
    failure without retries. Anything else (I/O, a crash, a killed process) counts as transient.
    """
