"""Layout blocks → passages: neighbouring blocks merged up to a word budget, and no unit that is a lone label.

A PDF page breaks into many small blocks (headings, figure labels such as "E" or "C", equation pieces, page
numbers). Each was its own unit: 13 a page on the benchmark corpus, most of the encoder's time, and result rows
whose whole text was one letter. Merging neighbours in reading order into passages of about `max_words` words
(all-MiniLM-L6-v2 reads 256 word pieces; 120 English words are about 160) keeps every character searchable with
a fraction of the units, and a passage is a better snippet than a fragment.
"""

from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"\w+")
MIN_LABEL_CHARS = 3  # a text with fewer letters/digits than this is a label, not a passage


def is_label(text: str) -> bool:
    """True for text that cannot stand alone as a result: fewer than MIN_LABEL_CHARS letters or digits ("E", "(c)",
    "12", "—")."""
    return sum(len(w) for w in _WORD.findall(text)) < MIN_LABEL_CHARS


def merge_blocks(blocks: Sequence[tuple[str, tuple[float, float, float, float], int, int]], max_words: int
                 ) -> list[tuple[str, tuple[float, float, float, float], int, int]]:
    """Merge consecutive (text, (x0, y0, x1, y1), start, end) blocks of one page into passages of at most `max_words`
    words (a longer block stays whole), in order. Labels always join a neighbour; a page that is only labels gives
    no passage. `max_words <= 0` keeps the blocks as they are, labels dropped."""
    out: list[list] = []
    for text, box, s, e in blocks:
        words = len(text.split())
        if max_words <= 0 and is_label(text):
            continue
        if out and (is_label(text) or (max_words > 0 and out[-1][4] + words <= max_words)):
            cur = out[-1]
            cur[1] = (min(cur[1][0], box[0]), min(cur[1][1], box[1]), max(cur[1][2], box[2]), max(cur[1][3], box[3]))
            cur[3] = e
            cur[4] += words
            cur[5].append(text)
            continue
        out.append([text, box, s, e, words, [text]])
    # A label that opened the page (nothing before it to join) joins the next passage instead.
    merged: list[list] = []
    for p in out:
        if merged and is_label(" ".join(merged[-1][5])):
            prev = merged.pop()
            p[1] = (min(prev[1][0], p[1][0]), min(prev[1][1], p[1][1]), max(prev[1][2], p[1][2]), max(prev[1][3], p[1][3]))
            p[2] = prev[2]
            p[5] = prev[5] + p[5]
        merged.append(p)
    return [("\n\n".join(p[5]), tuple(p[1]), p[2], p[3]) for p in merged if not is_label(" ".join(p[5]))]
