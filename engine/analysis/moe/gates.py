"""MoE gates and routing (docs/analyses.md, `moe gate`).

* `LogRegGate`: classification gate, multinomial logistic regression (lbfgs) on
  standardised gate features, target = the true bin; trained on the training split;
  C picked from C_GRID by validation accuracy (the research chose C by CV).
* `RegressionGate` ('mlp': d→64→ReLU→K, 'linear': d→K; softmax weights w): trained with
  the experts FROZEN on MSE(y, Σ_k w_k ŷ_k) on the validation split (80 % fit, 20 %
  early-stopping hold-out), Adam lr 1e-3, ≤100 epochs, patience 10. torch is imported
  inside the functions only.
* `route`: soft ŷ = Σ p_k ŷ_k; hard ŷ = ŷ_argmax; fallback = soft, but the global
  prediction when max_k p_k < τ."""

from __future__ import annotations

import numpy as np

from engine.errors import SpecError

C_GRID = (0.1, 1.0, 10.0)
GATES = ("logreg", "mlp", "linear")
ROUTINGS = ("soft", "hard", "fallback")


class LogRegGate:
    def __init__(self, k: int, c_grid=C_GRID, max_iter: int = 1000) -> None:
        self.k = k
        self.c_grid = c_grid
        self.max_iter = max_iter

    def fit(self, F, bins, F_val=None, bins_val=None, seed: int = 0) -> LogRegGate:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        ok = bins >= 0
        best = None
        for c in self.c_grid:
            m = make_pipeline(StandardScaler(), LogisticRegression(
                C=c, max_iter=self.max_iter, random_state=seed)).fit(F[ok], bins[ok])
            vok = None if F_val is None else np.asarray(bins_val) >= 0
            acc = float(np.mean(m.predict(F_val[vok]) == bins_val[vok])) \
                if vok is not None and vok.any() else float(np.mean(m.predict(F[ok]) == bins[ok]))
            if best is None or acc > best[0]:
                best = (acc, c, m)
        self.val_accuracy_, self.C_, self.model_ = best
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, F) -> np.ndarray:
        out = np.zeros((len(F), self.k))
        out[:, self.classes_] = self.model_.predict_proba(F)
        return out


class RegressionGate:
    def __init__(self, kind: str, k: int, hidden: int = 64, lr: float = 1e-3,
                 epochs: int = 100, patience: int = 10, batch: int = 256) -> None:
        self.kind, self.k, self.hidden, self.lr = kind, k, hidden, lr
        self.epochs, self.patience, self.batch = epochs, patience, batch

    def _net(self, d: int):
        import torch

        if self.kind == "mlp":
            return torch.nn.Sequential(torch.nn.Linear(d, self.hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(self.hidden, self.k))
        return torch.nn.Linear(d, self.k)

    def fit(self, F, P, y, seed: int = 0) -> RegressionGate:
        """F (n, d) gate features, P (n, K) frozen expert predictions, y (n,) log g."""
        import torch

        torch.manual_seed(seed)
        self.mu_, self.sd_ = F.mean(axis=0), F.std(axis=0)
        self.sd_[self.sd_ == 0] = 1.0
        X = torch.tensor((F - self.mu_) / self.sd_, dtype=torch.float32)
        Pt, yt = torch.tensor(P, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        perm = np.random.default_rng(seed).permutation(len(y))
        n_hold = max(1, len(y) // 5) if len(y) >= 10 else 0
        hold, fit = perm[:n_hold], perm[n_hold:]
        self.net_ = self._net(X.shape[1])
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        best, best_state, bad, self.epochs_run_ = np.inf, None, 0, 0
        for _ep in range(self.epochs):
            self.epochs_run_ += 1
            for s in range(0, len(fit), self.batch):
                i = torch.as_tensor(fit[s:s + self.batch])
                loss = self._loss(X[i], Pt[i], yt[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
            idx = torch.as_tensor(hold if n_hold else fit)
            with torch.no_grad():
                v = float(self._loss(X[idx], Pt[idx], yt[idx]))
            if v < best - 1e-9:
                best, bad = v, 0
                best_state = {k: t.clone() for k, t in self.net_.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.val_mse_ = best
        return self

    def _loss(self, X, P, y):
        import torch

        w = torch.softmax(self.net_(X), dim=1)
        return torch.mean((torch.sum(w * P, dim=1) - y) ** 2)

    def predict_proba(self, F) -> np.ndarray:
        import torch

        X = torch.tensor((F - self.mu_) / self.sd_, dtype=torch.float32)
        with torch.no_grad():
            return torch.softmax(self.net_(X), dim=1).numpy().astype(np.float64)


def make_gate(kind: str, k: int):
    if kind == "logreg":
        return LogRegGate(k)
    if kind in ("mlp", "linear"):
        return RegressionGate(kind, k)
    raise SpecError(f"unknown gate {kind!r}", key="gate", hint="use logreg, mlp or linear")


def route(probs: np.ndarray, P: np.ndarray, g: np.ndarray, routing: str, tau: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, fallback mask) of a gate's weights over frozen expert predictions."""
    if routing not in ROUTINGS:
        raise SpecError(f"unknown routing {routing!r}", key="routing",
                        hint="use soft, hard or fallback")
    if routing == "hard":
        return P[np.arange(len(P)), np.argmax(probs, axis=1)], np.zeros(len(P), bool)
    soft = np.sum(probs * P, axis=1)
    if routing == "soft":
        return soft, np.zeros(len(P), bool)
    fb = probs.max(axis=1) < tau
    return np.where(fb, g, soft), fb
