"""Query suggestions from an index's own content: the word pairs that recur across its documents.

The web UI's landing page offers these instead of phrases fixed to the demo corpus, so a new index suggests
searches that find something in it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Iterable

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
STOPWORDS = frozenset("""
a about above after again against all also among and any are aren't as at be because been before being below between
both but by can cannot could did does doing down during each even few for from further had has have having here how
however into its itself just more most much must not now off once only other our ours out over own same shall should
since some such than that the their theirs them then there these they this those through too under until upon very
was were what when where which while who whom why will with within without would you your yours figure fig table page
pages section chapter use used using one two three may can et al also new per via
""".split())


def suggest_queries(units: Iterable[tuple[str, str]], n: int = 4) -> list[str]:
    """Up to `n` suggestions from (asset_id, text) pairs: two-word phrases found in the most distinct assets (at least
    two when the index has several), one suggestion per asset, then frequent single words if pairs run out."""
    pair_assets: dict[str, set[str]] = defaultdict(set)
    word_assets: dict[str, set[str]] = defaultdict(set)
    n_assets: set[str] = set()
    for aid, text in units:
        n_assets.add(aid)
        words = [w.lower() for w in _WORD.findall(text or "")]
        for a, b in zip(words, words[1:]):
            if a not in STOPWORDS and b not in STOPWORDS and a != b:
                pair_assets[f"{a} {b}"].add(aid)
        for w in words:
            if w not in STOPWORDS:
                word_assets[w].add(aid)
    need = 2 if len(n_assets) > 2 else 1
    out: list[str] = []
    used_assets: set[str] = set()
    used_words: set[str] = set()
    for cands in (pair_assets, word_assets):
        ranked = sorted(cands.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        for phrase, assets in ranked:
            if len(out) >= n:
                return out
            words = set(phrase.split())
            if (len(assets) < need and cands is pair_assets) or words & used_words or assets <= used_assets:
                continue
            out.append(phrase)
            used_assets |= assets
            used_words |= words
    # Small or uniform indexes: fill with the most frequent remaining words, whatever their spread.
    counts = Counter({w: len(a) for w, a in word_assets.items() if w not in used_words})
    out += [w for w, _ in counts.most_common(max(0, n - len(out)))]
    return out[:n]
