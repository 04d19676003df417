"""The program engine (spec 4): Python functions in ``function`` labels, run with a ``ctx``."""

from dongyu.program.ctx import Ctx
from dongyu.program.host import Host, NullHost, RecordingHost
from dongyu.program.runtime import FunctionRun, Runtime

__all__ = ["Ctx", "FunctionRun", "Host", "NullHost", "RecordingHost", "Runtime"]
