"""The one error hierarchy of dongyu.

Every error the package raises on purpose is a :class:`DongyuError`. Each
carries a short machine-readable ``code`` and a human ``detail``; ``str(err)``
is ``"<code>: <detail>"``, the form used in logs, patch results and HTTP
answers.
"""

from __future__ import annotations


class DongyuError(Exception):
    """Base class of every error dongyu raises on purpose."""

    code: str = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class ValidationError(DongyuError):
    """A value (label, reference, record) is not what the contract asks for."""

    code = "invalid_value"


class InvalidPatch(ValidationError):
    """A whole patch envelope is refused (spec 3: reason ``invalid_patch``)."""

    code = "invalid_patch"


class RecordRejected(ValidationError):
    """One record of a patch is rejected; ``code`` says why."""

    code = "record_rejected"


class InvalidSnapshot(ValidationError):
    """A snapshot document does not have the shape of spec 2."""

    code = "invalid_snapshot"


class ProgramError(DongyuError):
    """A program model function could not be found, compiled or run."""

    code = "program_error"


class UntrustedFunction(RecordRejected):
    """An untrusted source tried to add, change or remove a function label."""

    code = "untrusted_function"


class UnknownProgram(DongyuError):
    """A program model name that is neither shipped nor a readable file."""

    code = "unknown_program"


class StoreError(DongyuError):
    """Persistence failed (a missing checkpoint, a corrupt row, ...)."""

    code = "store_error"


class SettingsError(DongyuError):
    """A setting (environment variable, ``.env`` line, state file) is missing or invalid."""

    code = "invalid_settings"


class InfraError(DongyuError):
    """The local infrastructure (homeserver, broker) could not be set up, reached or stopped."""

    code = "infra_error"


class PortInUse(InfraError):
    """A port an embedded server needs is already taken by another program."""

    code = "port_in_use"


class InfraTimeout(InfraError):
    """A server did not answer in time; the detail names the log file to read."""

    code = "infra_timeout"


class K8sError(DongyuError):
    """The local Kubernetes cluster, the worker image or a deployment failed; says what to read."""

    code = "k8s_error"
