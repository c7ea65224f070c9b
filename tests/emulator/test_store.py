"""The core structures against brute-force models (Hypothesis), independent of HTTP."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syncd.emulator.search import SearchIndex, SearchTerms
from syncd.emulator.store import ContactStore, StoredContact

CREATED = st.sampled_from(
    ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z", "2026-01-02T00:00:00.000Z"]
)
IDS = st.text("abcdef", min_size=1, max_size=4)


class StoreMachine(RuleBasedStateMachine):
    """Pages always equal slices of the model sorted by (created, arrival): contacts of one
    instant keep the order they were inserted in, whatever their ids."""

    def __init__(self) -> None:
        super().__init__()
        self.store = ContactStore()
        self.model: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.arrivals = 0

    def _arrive(self, contact_id: str, created: str, doc: dict[str, Any]) -> None:
        self.model[contact_id] = (created, self.arrivals, doc)
        self.arrivals += 1

    @rule(contact_id=IDS, created=CREATED)
    def insert(self, contact_id: str, created: str) -> None:
        if contact_id in self.model:
            return
        doc = {"id": contact_id}
        self.store.insert(StoredContact(contact_id, created, doc))
        self._arrive(contact_id, created, doc)

    @rule(ids=st.lists(IDS, unique=True, max_size=5), created=CREATED)
    def insert_many(self, ids: list[str], created: str) -> None:
        fresh = [i for i in ids if i not in self.model]
        self.store.insert_many(StoredContact(i, created, {"id": i}) for i in fresh)
        for i in fresh:
            self._arrive(i, created, {"id": i})

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        contact_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.store.delete(contact_id) == self.model.pop(contact_id)[2]
        assert self.store.delete(contact_id) is None

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        contact_id = data.draw(st.sampled_from(sorted(self.model)))
        doc = {"id": contact_id, "v": 2}
        self.store.replace(contact_id, doc)
        created, arrival, _ = self.model[contact_id]
        self.model[contact_id] = (created, arrival, doc)

    @invariant()
    def pages_match_the_model(self) -> None:
        ordered = [doc for _, _, doc in sorted(self.model.values(), key=lambda m: m[:2])]
        assert len(self.store) == len(ordered)
        assert list(self.store) == ordered
        for size in (1, 3, 100):
            for offset in range(0, len(ordered) + 2, size):
                assert self.store.page(offset, size) == ordered[offset : offset + size]
                reverse = ordered[::-1]
                assert (
                    self.store.page(offset, size, descending=True)
                    == reverse[offset : offset + size]
                )
        # Cursor paging resumes right after a contact's key, also among equal instants.
        for position, doc in enumerate(ordered):
            rest, more = self.store.after(self.store.key(doc["id"]), 3)
            assert rest == ordered[position + 1 : position + 4]
            assert more == (position + 4 < len(ordered))


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=75, stateful_step_count=30, deadline=None)


@settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),  # contact id
            st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),  # externalId, None = delete
            st.floats(0, 10, allow_nan=False),  # lag at the time of the write
            st.floats(0, 5, allow_nan=False),  # time passing after the write
        ),
        max_size=15,
    )
)
def test_the_index_shows_the_latest_write_whose_lag_has_passed(
    writes: list[tuple[str, str | None, float, float]],
) -> None:
    """At any time a search sees, per contact, the newest write already visible."""
    index = SearchIndex()
    now = 0.0
    history: list[tuple[float, str, str | None]] = []  # (visible_at, id, externalId)
    for contact_id, external, lag, wait in writes:
        if external is None:
            index.remove(contact_id, now=now, visible_at=now + lag)
        else:
            terms = SearchTerms(exact=(external,))
            doc = {"id": contact_id, "externalId": external}
            index.put(contact_id, ("c", 0, contact_id), doc, terms, now=now, visible_at=now + lag)
        history.append((now + lag, contact_id, external))
        now += wait
        for query in ("x", "y", "z"):
            expected = set()
            for cid in ("a", "b"):
                visible = [ext for at, i, ext in history if i == cid and at <= now]
                if visible and visible[-1] == query:
                    expected.add(cid)
            assert {d["id"] for d in index.search(query, now=now)} == expected
    index.search("x", now=now + 100)
    assert index.pending() == 0
