"""One service, one deadline: every request a bootstrap step makes to its service shares the `--timeout`
seconds, so a service that accepts connections and never answers fails the step within that bound, whatever
its client retries or however many requests the step makes."""

from __future__ import annotations

import time

from requests.adapters import HTTPAdapter
from requests.exceptions import ReadTimeout


class DeadlineExpired(TimeoutError):
    pass


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """The seconds the next request may take; DeadlineExpired once none are left."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise DeadlineExpired(f"no time left of {self.seconds:g} s")
        return remaining


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter that never retries and gives each request what is left of the deadline, to connect
    and to answer."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(max_retries=0)
        self.deadline = deadline

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: ANN001, ANN201
        try:
            left = self.deadline.left()
        except DeadlineExpired as exc:
            raise ReadTimeout(str(exc), request=request) from exc
        return super().send(request, stream=stream, timeout=left, verify=verify, cert=cert, proxies=proxies)


def bound_botocore_client(client, deadline: Deadline) -> None:  # noqa: ANN001 - a boto3 client
    """Each request of a boto3 client reads within what is left of the deadline (botocore's per-request
    read_timeout), and none starts after it."""

    def before_send(request, **_: object) -> None:  # noqa: ANN001
        request.context["read_timeout"] = deadline.left()

    client.meta.events.register("before-send", before_send)
