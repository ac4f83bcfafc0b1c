"""Exceptions the engine raises on purpose (besides ValueError/TypeError for bad input)."""


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    The network has been restored to the last finite parameters (those at the end of the
    previous epoch). Attributes: ``epoch`` (0-based epoch in which it happened) and
    ``history`` (the records up to the last good epoch).
    """

    def __init__(self, message, epoch, history=None):
        super().__init__(message)
        self.epoch = epoch
        self.history = history
