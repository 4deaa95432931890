"""Two-level visual vocabulary (a vocabulary tree, Nister & Stewenius 2006) over RootSIFT descriptors.

`coarse` centroids split descriptor space into cells and each cell has its own `fine` centroids, so a word is
`cell * fine_per_cell + fine`. Assignment costs coarse + fine dot products instead of coarse * fine, which keeps
query-time quantisation at a few milliseconds for 16k words with no ANN library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

_FAR = 1e4  # coordinate value for unused fine centroids: never the nearest


def kmeans(x: np.ndarray, k: int, *, iters: int = 12, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means (float32, matmul distances); empty clusters are reseeded from far points."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    k = min(k, n)
    c = x[rng.choice(n, k, replace=False)].copy()
    x2 = np.einsum("ij,ij->i", x, x)
    for _ in range(iters):
        lab, dist = _nearest(x, c, x2)
        counts = np.bincount(lab, minlength=k)
        sums = _cluster_sums(lab, x, k)
        empty = counts == 0
        c = np.where(empty[:, None], c, sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if empty.any():
            far = np.argsort(-dist)[: int(empty.sum())]
            c[empty] = x[far]
    return c


def _cluster_sums(lab: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    from scipy.sparse import csr_matrix

    onehot = csr_matrix((np.ones(len(lab), np.float32), (lab, np.arange(len(lab)))), shape=(k, len(lab)))
    return np.asarray(onehot @ x, dtype=np.float32)


def _nearest(x: np.ndarray, c: np.ndarray, x2: np.ndarray | None = None, chunk: int = 65536):
    c2 = np.einsum("ij,ij->i", c, c)
    lab = np.empty(x.shape[0], np.int64)
    dist = np.empty(x.shape[0], np.float32)
    for s in range(0, x.shape[0], chunk):
        d = c2[None, :] - 2.0 * (x[s : s + chunk] @ c.T)
        lab[s : s + chunk] = np.argmin(d, axis=1)
        dist[s : s + chunk] = d[np.arange(d.shape[0]), lab[s : s + chunk]]
    if x2 is not None:
        dist += x2
    return lab, dist


@dataclass
class Vocabulary:
    coarse: np.ndarray  # (C, D) float32
    fine: np.ndarray  # (C, F, D) float32; unused slots hold _FAR

    @property
    def size(self) -> int:
        return int(self.fine.shape[0] * self.fine.shape[1])

    @staticmethod
    def train(x: np.ndarray, n_words: int, *, seed: int = 0) -> "Vocabulary":
        """Learn about `n_words` words from RootSIFT samples `x` (n, D)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n_words = max(4, min(n_words, x.shape[0]))
        n_coarse = max(2, int(round(np.sqrt(n_words))))
        n_fine = max(2, int(np.ceil(n_words / n_coarse)))
        coarse = kmeans(x, n_coarse, seed=seed)
        lab, _ = _nearest(x, coarse)
        fine = np.full((coarse.shape[0], n_fine, x.shape[1]), _FAR, np.float32)
        for cell in range(coarse.shape[0]):
            members = x[lab == cell]
            if len(members) == 0:
                continue
            fc = kmeans(members, min(n_fine, len(members)), iters=8, seed=seed + cell + 1)
            fine[cell, : len(fc)] = fc
        return Vocabulary(coarse, fine)

    def assign(self, x: np.ndarray, *, multi: int = 1, coarse_probe: int = 1) -> np.ndarray:
        """Nearest words of RootSIFT vectors `x`: (n,) int32 when multi == 1, else (n, multi) nearest first,
        searching the `coarse_probe` nearest cells."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        nf = self.fine.shape[1]
        if n == 0:
            return np.zeros((0,) if multi == 1 else (0, multi), np.int32)
        cd = -(x @ self.coarse.T) * 2 + self._coarse_norms()[None, :]
        probe = min(coarse_probe, self.coarse.shape[0])
        if probe > 1:
            cells = np.argpartition(cd, probe - 1, axis=1)[:, :probe]
            cells = np.take_along_axis(cells, np.argsort(np.take_along_axis(cd, cells, axis=1), axis=1), axis=1)
        else:
            cells = np.argmin(cd, axis=1)[:, None]
        # Distances to the fine centroids of every probed cell, computed one cell at a time (a GEMM per cell)
        # and written as whole rows of a (n * probe, nf) table.
        flat = cells.reshape(-1)
        best_d = np.empty((n * probe, nf), np.float32)
        order = np.argsort(flat, kind="stable")
        sf = flat[order]
        starts = np.flatnonzero(np.r_[True, sf[1:] != sf[:-1]])
        ends = np.r_[starts[1:], len(sf)]
        f2 = self._fine_norms()
        for a, b in zip(starts, ends):
            cell = sf[a]
            sel = order[a:b]
            best_d[sel] = f2[cell][None, :] - 2.0 * (x[sel // probe] @ self.fine[cell].T)
        best_d = best_d.reshape(n, probe * nf)
        if multi == 1:
            j = np.argmin(best_d, axis=1)
            return (cells[np.arange(n), j // nf] * nf + j % nf).astype(np.int32)
        m = min(multi, best_d.shape[1])
        j = np.argpartition(best_d, m - 1, axis=1)[:, :m] if m < best_d.shape[1] else np.argsort(best_d, axis=1)
        j = np.take_along_axis(j, np.argsort(np.take_along_axis(best_d, j, axis=1), axis=1), axis=1)
        return (np.take_along_axis(cells, j // nf, axis=1) * nf + j % nf).astype(np.int32)

    def _coarse_norms(self) -> np.ndarray:
        if getattr(self, "_c2", None) is None or self._c2.shape[0] != self.coarse.shape[0]:
            self._c2 = np.einsum("ij,ij->i", self.coarse, self.coarse)
        return self._c2

    def _fine_norms(self) -> np.ndarray:
        if getattr(self, "_f2", None) is None or self._f2.shape != self.fine.shape[:2]:
            self._f2 = np.einsum("cfd,cfd->cf", self.fine, self.fine)
        return self._f2

    def save(self, path: str) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            np.savez(f, coarse=self.coarse, fine=self.fine)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @staticmethod
    def load(path: str) -> "Vocabulary":
        with np.load(path) as z:
            return Vocabulary(z["coarse"], z["fine"])
