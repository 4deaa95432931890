"""Asset ids do not depend on which folder level was passed to `index`; ids already given never change."""

from __future__ import annotations

from pathlib import Path

import polyseek
from polyseek.config import IndexConfig
from polyseek.indexer import assign_ids, id_candidates


def test_candidates_grow_by_folders_then_take_the_suffix():
    assert id_candidates(Path("/home/u/docs/report.pdf")) == [
        "report", "docs/report", "u/docs/report", "home/u/docs/report",
        "report.pdf", "docs/report.pdf", "u/docs/report.pdf", "home/u/docs/report.pdf"]


def test_stems_lengthened_only_as_far_as_needed():
    paths = [Path("/d/a/readme.md"), Path("/d/b/readme.md"), Path("/d/b/notes.md"), Path("/d/b/notes.txt"),
             Path("/d/x/y/plan.pdf")]
    ids = assign_ids(paths, {})
    assert ids == {"/d/a/readme.md": "a/readme", "/d/b/readme.md": "b/readme", "/d/b/notes.md": "notes.md",
                   "/d/b/notes.txt": "notes.txt", "/d/x/y/plan.pdf": "plan"}


def test_existing_ids_are_kept_and_avoided():
    # "plan" belongs to an indexed file elsewhere (built under any rule): the new file takes the next free form.
    taken = {"plan": "/old/plan.pdf", "q/report": "/q/report.pdf"}
    ids = assign_ids([Path("/new/plan.pdf"), Path("/r/report.pdf")], taken)
    assert ids == {"/new/plan.pdf": "new/plan", "/r/report.pdf": "r/report"}


def test_the_folder_level_passed_does_not_change_ids(tmp_path):
    docs = tmp_path / "docs"
    (docs / "pdfs").mkdir(parents=True)
    (docs / "pdfs" / "invoice.md").write_text("Invoice 117, total due 1,250 EUR.\n")
    (docs / "notes.md").write_text("Notes about the invoice.\n")
    cfg = IndexConfig(instance=False)
    with polyseek.open(tmp_path / "top", cfg) as top, polyseek.open(tmp_path / "sub", cfg) as sub:
        top.add([docs])
        sub.add([docs / "pdfs"])
        sub.add([docs])  # then the parent: the file already indexed keeps its id, the new one gets its stem
        assert sorted(top.store.asset_index()) == sorted(sub.store.asset_index()) == ["invoice", "notes"]
