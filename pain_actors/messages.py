"""Messages between the front end and the PAIN actors, and among the actors.

Every message is a picklable dataclass, because multiprocTCPBase sends them between processes.
Requests carry an id, and the reply repeats it, so a caller can tell a late reply to an earlier
request from the one it is waiting for.
"""

from __future__ import annotations

from dataclasses import dataclass, field


# --- front end -> coordinator -> predictor -------------------------------------------


@dataclass
class PredictRequest:
    request_id: str
    image: bytes
    museum: str | None = None
    limit: int = 5


@dataclass
class Predicted:
    """A predictor's reply; the coordinator forwards it with `attempts` filled in."""

    request_id: str
    matches: list[dict]
    predictor: str
    version: str | None
    elapsed_ms: float
    attempts: int = 1


@dataclass
class PredictRejected:
    """The photo itself is unusable: `reason` is model.intake.ImageError's reason."""

    request_id: str
    reason: str
    message: str
    predictor: str = ""


@dataclass
class RequestFailed:
    """The service could not process the request: `status` is the HTTP status the front end should send."""

    request_id: str
    status: int
    error: str


# --- predictor lifecycle -------------------------------------------------------------


@dataclass
class WhoAreYou:
    """Ask a predictor for a `PredictorInfo`."""


@dataclass
class PredictorInfo:
    predictor: str
    version: str | None
    pid: int
    node: str = "local"  # the actor system it runs in, host:admin port


@dataclass
class LoadVersion:
    version: str


@dataclass
class VersionLoaded:
    predictor: str
    version: str
    seconds: float


@dataclass
class VersionLoadFailed:
    predictor: str
    version: str
    error: str


# --- administration ------------------------------------------------------------------


@dataclass
class ReloadRequest:
    """Make `version` (default: the newest published one) the target of every predictor."""

    request_id: str
    version: str | None = None


@dataclass
class ReloadAccepted:
    request_id: str
    version: str


@dataclass
class StatusRequest:
    request_id: str


@dataclass
class StatusReport:
    request_id: str
    status: dict = field(default_factory=dict)


@dataclass
class TrainRequest:
    """Start a training run, or continue run `resume` from its last checkpoint."""

    request_id: str
    resume: str | None = None


@dataclass
class TrainAccepted:
    request_id: str
    run_id: str


@dataclass
class CancelTraining:
    """Stop the running training run after its current batch; it publishes nothing.

    `run_id` guards against cancelling a newer run than the caller saw; None cancels any.
    """

    request_id: str
    run_id: str | None = None


@dataclass
class TrainingCancelling:
    request_id: str
    run_id: str


@dataclass
class Crash:
    """Fault injection: the receiving actor raises, and so exits abnormally like a crashed process."""

    reason: str = "crash requested by fault injection"
