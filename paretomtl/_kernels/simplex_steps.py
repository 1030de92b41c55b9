"""Projected steps on the probability simplex for the stateful Gram-space weightings.

MoDo and SDMGrad move their weights by a gradient step and the exact Euclidean
projection onto the simplex; ExcessMTL accumulates squared gradients per coordinate.
Every kernel takes float64 arrays only (one compiled signature each) and is compiled on
its first call, then cached on disk.
"""

import numpy as np

from paretomtl._kernels._jit import entry, jit


@jit
def project_into(y, out, u):
    """Euclidean projection of the vector ``y`` onto {x >= 0, sum(x) = 1}, by sorting,
    written into ``out`` (``u`` is scratch space of the same length; ``out`` may be y).

    The answer is x = max(y - theta, 0) with theta the unique threshold that makes x
    sum to 1. With the entries sorted in decreasing order as u, theta = (sum_{j <= r}
    u_j - 1) / (r + 1) for the largest r with u_r > (sum_{j <= r} u_j - 1) / (r + 1)
    (Held, Wolfe & Crowder 1974; Duchi et al. 2008). The vector is first shifted by
    its maximum (the projection ignores a common shift), so that the top entry is 0
    and the sums stay of the order of 1 whatever the magnitude of y: r >= 0 always
    exists and the top entry keeps a positive weight.
    """
    K = y.shape[0]
    top = y[0]
    for i in range(1, K):
        if y[i] > top:
            top = y[i]
    for i in range(K):
        u[i] = y[i] - top
    u.sort()  # increasing: u[K - 1 - j] is the (j + 1)-th largest
    css = 0.0
    theta = -1.0  # r = 0: u_0 = 0 > -1 always holds
    for j in range(K):
        v = u[K - 1 - j]
        css += v
        t = (css - 1.0) / (j + 1.0)
        if v > t:
            theta = t
    for i in range(K):
        v = (y[i] - top) - theta
        out[i] = v if v > 0.0 else 0.0


@entry
def project_simplex(y):
    """:func:`project_into` returning a new array."""
    out = np.empty(y.shape[0])
    project_into(y, out, np.empty(y.shape[0]))
    return out


@entry
def modo_step(G, lam, gamma, rho):
    """MoDo's update: Proj_simplex(lam - gamma (G lam + rho lam)).

    Returns ``(new_lam, y, ok)`` with y the point before the projection and ``ok``
    False (and new_lam = lam) when y is not finite (overflow).
    """
    K = G.shape[0]
    y = np.empty(K)
    ok = True
    for i in range(K):
        s = 0.0
        for j in range(K):
            s += G[i, j] * lam[j]
        y[i] = lam[i] - gamma * (s + rho * lam[i])
        if not np.isfinite(y[i]):
            ok = False
    out = lam.copy()
    if ok:
        project_into(y, out, np.empty(K))
    return out, y, ok


@entry
def sdmgrad_inner(G, w, pref, lam, lr, momentum, n_iter, eps):
    """SDMGrad's normalisation and inner loop: ``n_iter`` projected heavy-ball steps.

    A = G / (s^2 + eps) with s the mean of sqrt(max(G_ii, 0)) (A = 0 if that is 0).
    With u = w + lam * pref, the gradient is A u; the velocity starts at the first
    gradient and is v <- momentum v + A u afterwards (torch.optim.SGD's momentum
    without dampening); each step sets w <- Proj_simplex(w - lr v). Returns the last
    w and the largest change of an entry of w in the last step.
    """
    K = G.shape[0]
    s = 0.0
    for i in range(K):
        d = G[i, i]
        if d > 0.0:
            s += np.sqrt(d)
    s /= K
    denom = s * s + eps
    zero = s == 0.0  # a PSD matrix with a zero diagonal is 0: A = 0
    v = np.zeros(K)
    u = np.empty(K)
    y = np.empty(K)
    scratch = np.empty(K)
    w = w.copy()
    new = np.empty(K)
    change = 0.0
    for t in range(n_iter):
        for j in range(K):
            u[j] = w[j] + lam * pref[j]
        for i in range(K):
            acc = 0.0
            for j in range(K):
                acc += G[i, j] * u[j]
            g = 0.0 if zero else acc / denom
            v[i] = g if t == 0 else momentum * v[i] + g
            y[i] = w[i] - lr * v[i]
        project_into(y, new, scratch)
        change = 0.0
        for i in range(K):
            d = abs(new[i] - w[i])
            if d > change:
                change = d
            w[i] = new[i]
    return w, change


@jit
def excess_accumulate(J, S, eps):
    """Add J**2 to S in place; return E_i = sum_m J_im^2 / sqrt(S_im + eps) (new S).

    A coordinate whose S_im + eps is 0 (no gradient there yet and eps = 0) adds 0.
    """
    K, M = J.shape
    E = np.zeros(K)
    for i in range(K):
        acc = 0.0
        for m in range(M):
            g = J[i, m]
            sq = g * g
            s = S[i, m] + sq
            S[i, m] = s
            d = s + eps
            if d > 0.0:
                acc += sq / np.sqrt(d)
        E[i] = acc
    return E
