"""The official vowel fit, solved exactly instead of with a per-frame SciPy optimiser.

The official converter finds vowel weights w in [0,1]^4 minimising ||A w - p||_2 + 0.01 ||w||_1, where the
columns of A are the vowel prototypes over (open, lowerDown, funnel, pucker). That is a convex problem in 4
variables, so we enumerate the 81 active sets (each weight at 0, at 1, or free). For the free weights the
stationarity condition has a closed form (see `_closed_form`), so every active set gives one candidate and
the optimum is the feasible candidate with the lowest cost. The common case (all weights strictly inside the
box) is tried first in plain Python, which is what keeps the mapping fast enough for 50k packets/s.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

VOWELS = ("aaa", "iii", "uuu", "ooo")
# Prototype per vowel over (open, lowerDown, funnel, pucker) (protocols/trackers.md, "Mouth").
PROTOTYPES = np.array([
    [1.0, 1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.5, 0.3, 0.25, 0.75],
    [1.0, 0.5, 0.5, 0.4],
])
L1_WEIGHT = 0.01


def objective(w: np.ndarray, p: np.ndarray, a: np.ndarray = PROTOTYPES.T, lam: float = L1_WEIGHT) -> float:
    """The official cost: ||A w - p||_2 + lam * ||w||_1."""
    return float(np.linalg.norm(a @ w - p) + lam * np.abs(w).sum())


def _complement_basis(af: np.ndarray | None, m: int) -> np.ndarray:
    """Orthonormal rows spanning what the columns of `af` cannot reach: ||q_perp||^2 = sum((rows @ q)^2)."""
    if af is None:
        return np.eye(m)
    u, sv, _ = np.linalg.svd(af, full_matrices=True)
    return u[:, af.shape[1]:].T


def _affine(a: np.ndarray, fixed: np.ndarray, pinv: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Everything before the residual norm is affine in p, so one [m, K*(n+m)] matmul gives, per pattern,
    the weights before shrinkage and the unexplained part of p: (p @ lin + off)."""
    m = a.shape[0]
    k, n = fixed.shape
    fixed_feat = fixed @ a.T                                   # [K, m]
    w_lin = np.einsum("kij->jki", pinv).reshape(m, k * n)
    w_off = fixed - np.einsum("kij,kj->ki", pinv, fixed_feat)
    perp = np.eye(m)[None] - proj                              # [K, m, m]
    r_lin = np.einsum("kij->jki", perp).reshape(m, k * m)
    r_off = -np.einsum("kij,kj->ki", perp, fixed_feat)
    return np.concatenate([w_lin, r_lin], axis=1), np.concatenate([w_off.reshape(-1), r_off.reshape(-1)])


class VowelSolver:
    """Exact minimiser of the official vowel cost for a fixed prototype matrix."""

    def __init__(self, prototypes: np.ndarray = PROTOTYPES, lam: float = L1_WEIGHT):
        a = np.asarray(prototypes, dtype=np.float64).T  # [features, vowels]
        m, n = a.shape
        if np.linalg.matrix_rank(a) < n:
            raise ValueError("vowel prototypes must be linearly independent")
        self.a, self.lam, self.n = a, float(lam), n
        fixed, pinv, proj, u, shrink, usable = [], [], [], [], [], []
        self._py = []  # per pattern, the same data as tuples for the warm-started plain-Python check
        for pattern in itertools.product((0, 1, 2), repeat=n):  # 0: at 0, 1: at 1, 2: free
            free = [j for j in range(n) if pattern[j] == 2]
            fixed.append([float(s) if s < 2 else 0.0 for s in pattern])
            p4, h, u4, c = np.zeros((n, m)), np.zeros((m, m)), np.zeros(n), 0.0
            if free:
                af = a[:, free]
                ginv = np.linalg.inv(af.T @ af)
                p4[free] = ginv @ af.T
                h = af @ ginv @ af.T
                u4[free] = ginv @ np.ones(len(free))
                c = float(np.ones(len(free)) @ ginv @ np.ones(len(free)))
            pinv.append(p4)
            proj.append(h)
            u.append(u4)
            ok = self.lam ** 2 * c < 1.0
            usable.append(ok)
            shrink.append(1.0 / math.sqrt(1.0 - self.lam ** 2 * c) if ok else 0.0)
            fixed_feat = a @ np.array(fixed[-1])
            self._py.append((
                tuple(free), tuple(j for j in range(n) if pattern[j] < 2), tuple(fixed[-1]),
                tuple(float(x) for x in fixed_feat), tuple(tuple(float(x) for x in p4[j]) for j in free),
                tuple(tuple(float(x) for x in row) for row in _complement_basis(a[:, free] if free else None, m)),
                tuple(float(u4[j]) for j in free),
                shrink[-1], ok, pattern))
        self._a_cols = tuple(tuple(float(x) for x in a[:, j]) for j in range(n))
        self._last = len(self._py) - 1
        self._was_interior = True
        fixed_a = np.array(fixed)                                   # [K, n]
        pinv_a, proj_a = np.array(pinv), np.array(proj)            # [K, n, m], [K, m, m]
        self._u = np.array(u)                                      # [K, n]
        self._shrink = np.array(shrink)
        self._usable = np.array(usable)
        self._lin, self._off = _affine(a, fixed_a, pinv_a, proj_a)
        self._k, self._m = len(fixed), m
        self._lam_u = self.lam * self._u
        self._bad = np.where(self._usable, 0.0, np.inf)
        # Interior fast path: with every weight free the residual is zero (A is invertible when square).
        self._square = m == n == 4
        if self._square:
            inv = np.linalg.inv(a)
            self._inv_rows = tuple(tuple(float(x) for x in row) for row in inv)
            self._interior_ok = bool(usable[-1])

    def solve(self, p) -> list[float]:
        """Weights [n] minimising ||A w - p|| + lam*sum(w) over the unit box."""
        if self._square and self._interior_ok:
            p0, p1, p2, p3 = p
            # Consecutive frames usually share the optimum's active set, so try last frame's kind first.
            if self._was_interior:
                w = self._interior(p0, p1, p2, p3)
                if w is not None:
                    return w
            w = self._walk(p0, p1, p2, p3)
            if w is not None:
                self._was_interior = False
                return w
            if not self._was_interior:
                w = self._interior(p0, p1, p2, p3)
                if w is not None:
                    self._was_interior = True
                    return w
        self._was_interior = False
        return self._solve_all(np.asarray(p, dtype=np.float64)).tolist()

    def _interior(self, p0: float, p1: float, p2: float, p3: float) -> list[float] | None:
        """All weights free: A w = p exactly, the optimum whenever it lies in the box."""
        w = [r[0] * p0 + r[1] * p1 + r[2] * p2 + r[3] * p3 for r in self._inv_rows]
        return w if min(w) >= 0.0 and max(w) <= 1.0 else None

    def _walk(self, p0: float, p1: float, p2: float, p3: float) -> list[float] | None:
        """From last frame's active set, while the KKT conditions fail, move the most violating weight to its
        bound or free it (a few active-set steps)."""
        k = self._last
        for _ in range(4):
            w = self._try_pattern(k, p0, p1, p2, p3)
            if isinstance(w, list):
                self._last = k
                return w
            if w is None:
                return None
            k = w
        return None

    def _try_pattern(self, k: int, p0: float, p1: float, p2: float, p3: float):
        """The weights if active set k satisfies the KKT conditions (then they are the optimum); otherwise the
        index of a better active set to try next, or None to give up."""
        free, fixed_j, fixed_v, ff, pinv, perp, u, shrink, ok, pattern = self._py[k]
        if not ok:
            return None
        q = (p0 - ff[0], p1 - ff[1], p2 - ff[2], p3 - ff[3])
        rho2 = 0.0
        for row in perp:
            x = row[0] * q[0] + row[1] * q[1] + row[2] * q[2] + row[3] * q[3]
            rho2 += x * x
        rn = math.sqrt(rho2) * shrink
        if rn < 1e-9:  # on the kink: leave it to the full enumeration
            return None
        w = list(fixed_v)
        lam = self.lam
        worst, worst_j, worst_to = 0.0, -1, 0
        for j, row, uj in zip(free, pinv, u):
            v = row[0] * q[0] + row[1] * q[1] + row[2] * q[2] + row[3] * q[3] - lam * rn * uj
            if v < 0.0 and -v > worst:
                worst, worst_j, worst_to = -v, j, 0
            elif v > 1.0 and v - 1.0 > worst:
                worst, worst_j, worst_to = v - 1.0, j, 1
            w[j] = v
        if worst_j >= 0:
            return self._neighbour(pattern, worst_j, worst_to)
        if fixed_j:
            cols = self._a_cols
            r = [-p0, -p1, -p2, -p3]
            for j in range(4):
                wj = w[j]
                if wj:
                    cj = cols[j]
                    r[0] += cj[0] * wj
                    r[1] += cj[1] * wj
                    r[2] += cj[2] * wj
                    r[3] += cj[3] * wj
            for j in fixed_j:
                cj = cols[j]
                g = (cj[0] * r[0] + cj[1] * r[1] + cj[2] * r[2] + cj[3] * r[3]) / rn + lam
                if (pattern[j] == 0 and g < -1e-9) or (pattern[j] == 1 and g > 1e-9):
                    return self._neighbour(pattern, j, 2)
        return w

    @staticmethod
    def _neighbour(pattern: tuple, j: int, state: int) -> int:
        k = 0
        for i, s in enumerate(pattern):
            k = k * 3 + (state if i == j else s)
        return k

    def _solve_all(self, p: np.ndarray) -> np.ndarray:
        k, n, m = self._k, self.n, self._m
        z = p @ self._lin + self._off
        w = z[: k * n].reshape(k, n)
        r = np.sqrt(np.square(z[k * n:]).reshape(k, m).sum(axis=1)) * self._shrink  # residual norm at optimum
        w = w - r[:, None] * self._lam_u
        cost = r + self.lam * w.sum(axis=1) + self._bad
        cost[(w.min(axis=1) < -1e-12) | (w.max(axis=1) > 1.0 + 1e-12)] = np.inf
        best = int(np.argmin(cost))
        self._last = best
        return np.clip(w[best], 0.0, 1.0)


DEFAULT_SOLVER = VowelSolver()
