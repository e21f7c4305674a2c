"""Exceptions of the sabot package: one subclass of SabotError per Arrow status code.

Every error of the C++ core is an arrow::Status; the extension raises it as the class of its
code. ``message`` is the status message (it names the operator, task, shuffle or file at fault),
``detail`` the text of the status detail when the core attached one (for shuffle errors: the
shuffle, partition, writer task and agent; for plan errors: the operator and field), else "".
"""


class SabotError(Exception):
    """Base class of every error the Sabot core reports."""

    code = "UnknownError"

    def __init__(self, message, detail=""):
        text = message if not detail or detail in message else f"{message} [{detail}]"
        super().__init__(text)
        self._text = text
        self.message = message
        self.detail = detail

    def __str__(self):
        return self._text


class SabotOutOfMemory(SabotError, MemoryError):
    code = "OutOfMemory"


class SabotKeyError(SabotError, KeyError):
    code = "KeyError"


class SabotTypeError(SabotError, TypeError):
    code = "TypeError"


class SabotInvalid(SabotError, ValueError):
    code = "Invalid"


class SabotIOError(SabotError, OSError):
    code = "IOError"


class SabotCapacityError(SabotError):
    code = "CapacityError"


class SabotIndexError(SabotError, IndexError):
    code = "IndexError"


class SabotCancelled(SabotError):
    code = "Cancelled"


class SabotUnknownError(SabotError):
    code = "UnknownError"


class SabotNotImplemented(SabotError, NotImplementedError):
    code = "NotImplemented"


class SabotSerializationError(SabotError):
    code = "SerializationError"


class SabotExecutionError(SabotError):
    code = "ExecutionError"


class SabotAlreadyExists(SabotError):
    code = "AlreadyExists"


# arrow::StatusCode values (arrow/status.h) -> class.
_BY_CODE = {
    1: SabotOutOfMemory,
    2: SabotKeyError,
    3: SabotTypeError,
    4: SabotInvalid,
    5: SabotIOError,
    6: SabotCapacityError,
    7: SabotIndexError,
    8: SabotCancelled,
    9: SabotUnknownError,
    10: SabotNotImplemented,
    11: SabotSerializationError,
    42: SabotExecutionError,
    45: SabotAlreadyExists,
}


def _from_status(code, message, detail):
    """The exception for an arrow::Status (called by the extension)."""
    return _BY_CODE.get(code, SabotUnknownError)(message, detail)


__all__ = ["SabotError"] + [c.__name__ for c in _BY_CODE.values()]
