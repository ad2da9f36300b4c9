"""bench/idle.py: timed runs start once no thread of the process is busy."""
import contextlib
import importlib.util
import threading
import time
from pathlib import Path

IDLE_PATH = Path(__file__).resolve().parents[1] / "bench" / "idle.py"


def load_idle():
    spec = importlib.util.spec_from_file_location("bench_idle", IDLE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def spinning(seconds):
    """Another thread keeps a core busy for ``seconds`` from now."""
    stop_at = time.perf_counter() + seconds

    def spin():
        while time.perf_counter() < stop_at:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        yield
    finally:
        spinner.join()


def test_waits_while_another_thread_spins_and_not_after():
    idle = load_idle()
    with spinning(0.3):
        waited = idle.wait_until_idle(max_seconds=5.0)
    assert 0.2 <= waited < 5.0
    assert idle.wait_until_idle(max_seconds=5.0) < 1.0  # nothing spins now


def test_gives_up_after_max_seconds():
    idle = load_idle()
    with spinning(1.0):
        waited = idle.wait_until_idle(max_seconds=0.2)
    assert 0.2 <= waited < 0.6
