"""The cyclic collector is paused during a classification and restored afterwards."""

from __future__ import annotations

import gc
import threading

from territoires._gc import paused


def test_pause_restores_the_collector_after_the_last_nested_pause() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pause_keeps_a_collector_disabled_by_the_caller() -> None:
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_pauses_end_with_the_last_one() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused():
            inside.set()
            release.wait()

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait()
    with paused():
        pass
    assert not gc.isenabled()  # the other thread is still classifying
    release.set()
    thread.join()
    assert gc.isenabled()


def test_pause_ends_on_error() -> None:
    try:
        with paused():
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()
