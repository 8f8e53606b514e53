"""Lookups: one reader thread per share, however many askers (nfsvol.share.lookups)."""

import threading

from nfsvol.share.lookups import Lookups


class Reader:
    """A share reader that records its passes and can be held mid-pass."""

    def __init__(self) -> None:
        self.passes: list[tuple[str, set[str]]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Semaphore(0)

    def __call__(self, share, names):
        self.passes.append((share, set(names)))
        self.entered.release()
        self.release.wait(10)


def test_one_pass_answers_its_asker():
    reader = Reader()
    lookups = Lookups(reader)
    ticket = lookups.ask("main", "data")
    assert lookups.wait({"main": ticket}, lambda: False, 5) == []
    assert reader.passes == [("main", {"data"})]


def test_askers_during_a_pass_share_the_next_one():
    reader = Reader()
    reader.release.clear()
    lookups = Lookups(reader)
    first = lookups.ask("main", "a")
    assert reader.entered.acquire(timeout=5)
    later = [lookups.ask("main", n) for n in ("b", "c", "b")]
    assert lookups.wait({"main": later[0]}, lambda: False, 0.1) == ["main"]
    reader.release.set()
    assert lookups.wait({"main": first}, lambda: False, 5) == []
    assert all(lookups.wait({"main": t}, lambda: False, 5) == [] for t in later)
    assert reader.passes == [("main", {"a"}), ("main", {"b", "c"})]


def test_a_hung_share_holds_one_thread_and_a_found_name_ends_the_wait():
    reader = Reader()
    lookups = Lookups(lambda s, n: reader(s, n) if s == "slow" else None)
    reader.release.clear()
    tickets = {s: lookups.ask(s, "data") for s in ("slow", "fast")}
    assert reader.entered.acquire(timeout=5)
    assert not lookups.overdue("slow")
    assert lookups.wait(tickets, lambda: False, 0.2) == ["slow"]  # it never answers
    assert lookups.overdue("slow") and not lookups.overdue("fast")
    assert lookups.wait(tickets, lambda: True, 0.2) == []  # found on "fast": no wait
    for _ in range(20):
        lookups.ask("slow", "other")
    assert len(reader.passes) == 1  # no thread per asker
    reader.release.set()
    assert lookups.wait({"slow": tickets["slow"] + 1}, lambda: False, 5) == []
    assert not lookups.overdue("slow")
