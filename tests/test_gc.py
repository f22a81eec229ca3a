"""The cyclic collector is paused during a classification and restored afterwards."""

from __future__ import annotations

import gc
import threading

from territoires._gc import PAUSE_FROM, paused

BIG = PAUSE_FROM  # rows of a classification large enough to pause the collector


def test_pause_restores_the_collector_after_the_last_nested_pause() -> None:
    assert gc.isenabled()
    with paused(BIG):
        assert not gc.isenabled()
        with paused(BIG):
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pause_keeps_a_collector_disabled_by_the_caller() -> None:
    gc.disable()
    try:
        with paused(BIG):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_pauses_end_with_the_last_one() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused(BIG):
            inside.set()
            release.wait()

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait()
    with paused(BIG):
        pass
    assert not gc.isenabled()  # the other thread is still classifying
    release.set()
    thread.join()
    assert gc.isenabled()


def test_pause_ends_on_error() -> None:
    try:
        with paused(BIG):
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()


def test_small_classifications_leave_the_collector_running() -> None:
    """A service classifying small batches back to back still collects its cycles."""
    with paused(PAUSE_FROM - 1):
        assert gc.isenabled()
    with paused(BIG), paused(1):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_classify_pauses_only_large_frames(monkeypatch) -> None:
    """classify_frame pauses the collector for a large frame, not for one place."""
    import pandas as pd

    import territoires
    from territoires import engine

    seen: list[bool] = []
    locate = engine.locate

    def spy(frame, ref):
        seen.append(gc.isenabled())
        return locate(frame, ref)

    monkeypatch.setattr(engine, "locate", spy)
    territoires.classify(pd.DataFrame({"lon": [1.44], "lat": [43.6]}))
    many = pd.DataFrame({"lon": [1.44] * BIG, "lat": [43.6] * BIG})
    territoires.classify(many, chunk_size=BIG)
    assert seen == [True, False]
    assert gc.isenabled()


def test_objects_made_during_a_pause_go_to_the_oldest_generation() -> None:
    """The first collection after a pause does not traverse what the pause created."""
    with paused(BIG):
        made = [[] for _ in range(50_000)]  # tracked objects, like geometries
    young, middle, _ = gc.get_count()
    assert young < 1_000 and middle < 2
    assert all(gc.is_tracked(item) for item in made[:10])
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gc.isenabled()


def test_a_pause_leaves_the_objects_frozen_by_the_process_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused(BIG):
            [[] for _ in range(1_000)]
        # unfrozen, the count would be 0; a few frozen objects may be freed meanwhile by
        # threads left by other tests, hence no exact equality
        assert gc.get_freeze_count() > frozen // 2
    finally:
        gc.unfreeze()
