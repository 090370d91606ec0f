"""Waiting for what a worker or the sandbox does in the background, with a deadline."""
import time


def wait_for(predicate, timeout: float = 20.0, message: str = ""):
    """The first truthy value of predicate(), polled every 0.1 s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
