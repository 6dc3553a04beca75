"""L2-regularised logistic regression over a dense block and a sparse block, in numpy.

Fitted by L-BFGS (two-loop recursion, Armijo backtracking), which converges in a few hundred
full passes even with ~10^5 sparse columns. Each block has its own L2 strength, because a
256-dimensional embedding learnt from a thousand examples needs far more shrinkage than twenty
text statistics. Labels may be 0/1 or scores in [0, 1] (the loss is the same cross-entropy).

Part of the router (step 2 of the flow): training and prediction, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hybridgate.router.sparse import SparseRows

Floats = NDArray[np.float64]
Objective = Callable[[Floats], tuple[float, Floats]]


@dataclass(frozen=True)
class Penalty:
    """L2 strength per block (on the summed, not averaged, loss)."""

    dense: Floats  # one per dense column
    tokens: float


@dataclass(frozen=True)
class Logistic:
    dense: Floats
    tokens: Floats
    bias: float

    def logit(self, dense: Floats, tokens: SparseRows) -> Floats:
        return np.asarray(dense @ self.dense + tokens.matvec(self.tokens) + self.bias)

    def predict(self, dense: Floats, tokens: SparseRows) -> Floats:
        return sigmoid(self.logit(dense, tokens))


def sigmoid(z: Floats) -> Floats:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))  # tanh form: no overflow warnings


def fit_logistic(
    dense: Floats, tokens: SparseRows, y: Floats, penalty: Penalty, max_iter: int = 150
) -> Logistic:
    """Minimise cross-entropy + L2; ``y`` in [0, 1]."""
    # Rescale every column by 1/sqrt(its L2 strength) so that the penalty is the same for all
    # weights: L-BFGS then sees a well-conditioned problem and converges in tens of passes.
    dense_scale = 1.0 / np.sqrt(np.maximum(penalty.dense, 1e-12))
    token_scale = 1.0 / np.sqrt(max(penalty.tokens, 1e-12))
    scaled = dense * dense_scale
    d, m = dense.shape[1], tokens.n_cols

    def objective(x: Floats) -> tuple[float, Floats]:
        wd, wt, b = x[:d], x[d : d + m], x[-1]
        z = scaled @ wd + token_scale * tokens.matvec(wt) + b
        # log(1 + e^z) - y z, computed stably
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z)) + 0.5 * float(x[:-1] @ x[:-1])
        r = sigmoid(z) - y
        grad = np.concatenate([scaled.T @ r + wd, token_scale * tokens.rmatvec(r) + wt, [r.sum()]])
        return loss, grad

    x = lbfgs(objective, np.zeros(d + m + 1), max_iter=max_iter)
    return Logistic(x[:d] * dense_scale, x[d : d + m] * token_scale, float(x[-1]))


def lbfgs(
    objective: Objective, x0: Floats, max_iter: int = 300, memory: int = 10, tol: float = 1e-6
) -> Floats:
    """Limited-memory BFGS with a backtracking (Armijo) line search."""
    x = x0.copy()
    f, g = objective(x)
    steps: list[tuple[Floats, Floats, float]] = []
    for _ in range(max_iter):
        direction = -_two_loop(g, steps)
        slope = float(g @ direction)
        if slope >= 0:  # not a descent direction: fall back to steepest descent
            steps.clear()
            direction, slope = -g, -float(g @ g)
        t = 1.0 if steps else min(1.0, 1.0 / max(float(np.abs(g).sum()), 1e-12))
        while True:
            x_new = x + t * direction
            f_new, g_new = objective(x_new)
            if f_new <= f + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        s, yv = x_new - x, g_new - g
        sy = float(s @ yv)
        if sy > 1e-12:
            steps.append((s, yv, 1.0 / sy))
            del steps[:-memory]
        done = abs(f - f_new) <= tol * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if done or float(np.abs(g).max()) < 1e-8:
            break
    return x


def _two_loop(g: Floats, steps: list[tuple[Floats, Floats, float]]) -> Floats:
    """H^-1 g from the stored curvature pairs (Nocedal & Wright, algorithm 7.4)."""
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(steps):
        alpha = rho * float(s @ q)
        alphas.append(alpha)
        q -= alpha * y
    if steps:
        s, y, _ = steps[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(steps, reversed(alphas), strict=True):
        beta = rho * float(y @ q)
        q += (alpha - beta) * s
    return q
