"""The DICE estimator: a scikit-learn-like face over preprocessing, the network and Algorithm 1."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..config import DICEConfig, PreprocessConfig
from ..data.validate import check_split_feasible
from ..errors import CohortError, ConfigError
from ..preprocess.preprocessor import CODED, NUMERIC, PreparedData, Preprocessor
from ..preprocess.split import stratified_split
from .network import DICENetwork
from .trainer import DICETrainer


# A model variable that none of the scored patients has: what the model reads instead
ABSENT = {NUMERIC: "not measured for these patients: read as the training mean",
          CODED: "no such event for these patients: counted as none"}


def rows_of(data: PreparedData, patient_ids) -> np.ndarray:
    """Positions of `patient_ids` in `data` (every id must be there)."""
    pos = pd.Index(data.patient_ids).get_indexer(pd.Index(patient_ids))
    if (pos < 0).any():
        raise ConfigError(f"{int((pos < 0).sum())} patient ids of the split are not in the prepared data")
    return pos


def _train_and_val(data: PreparedData, split) -> tuple[PreparedData, PreparedData]:
    return data.subset(rows_of(data, split.train)), data.subset(rows_of(data, split.val))


class DICE:
    """Deep significance clustering of patient sequences.

    fit(cohort) learns the preprocessing on the training split, then trains N(K, d) by Algorithm 1.
    transform / predict / predict_proba accept a Cohort or PreparedData of new patients.
    """

    def __init__(self, config: DICEConfig = DICEConfig(), preprocess: PreprocessConfig = PreprocessConfig()):
        self.config = config
        self.preprocess = preprocess

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, cohort, split=None, progress=None, should_stop=None, init_autoencoder=None):
        check_split_feasible(cohort.n_patients, int(cohort.y.sum()), self.config.n_clusters,
                             self.preprocess.split_ratios)
        if split is None:
            split = stratified_split(cohort.patients.index.to_numpy(), cohort.y, seed=self.config.seed,
                                     ratios=self.preprocess.split_ratios)
        preprocessor = Preprocessor(self.preprocess).fit(cohort, split.train)
        data = preprocessor.transform(cohort)
        return self.fit_prepared(data, split, preprocessor, progress, should_stop, init_autoencoder)

    def fit_prepared(self, data: PreparedData, split, preprocessor, progress=None, should_stop=None,
                     init_autoencoder=None):
        """Train on data already prepared by `preprocessor` (the search prepares once for all N(K, d))."""
        train, val = _train_and_val(data, split)
        if len(train.patient_ids) < 5 * self.config.n_clusters:
            raise ConfigError(f"{len(train.patient_ids)} training patients are too few for K={self.config.n_clusters} "
                              f"clusters: use a smaller K or a larger cohort (at least {5 * self.config.n_clusters})")
        trainer = DICETrainer(self.config, progress, should_stop)
        result = trainer.fit(train, val, data.n_inputs, data.n_features, data.V.shape[1], init_autoencoder)
        return self._set_fitted(result, data, split, preprocessor)

    def continue_training(self, data: PreparedData, n_iter: int, progress=None, should_stop=None) -> "DICE":
        """Go on training this model (fitted in this process) up to `n_iter` outer iterations in all:
        the same model as fitting with n_iter from the start, for less. `data`: as given to fit_prepared."""
        state = getattr(self, "loop_state_", None)
        if state is None:
            raise ConfigError("only a model trained in this process can go on training (a loaded model has no "
                              "optimiser state); fit it again with the larger n_iter")
        if n_iter < len(state.history):
            raise ConfigError(f"this model has trained {len(state.history)} iterations already; n_iter={n_iter} "
                              "cannot go back")
        self.config = self.config.replace(n_iter=n_iter)
        train, val = _train_and_val(data, self.split_)
        result = DICETrainer(self.config, progress, should_stop).resume(state, train, val, n_iter)
        return self._set_fitted(result, data, self.split_, self.preprocessor_)

    def _set_fitted(self, result, data: PreparedData, split, preprocessor) -> "DICE":
        self.preprocessor_ = preprocessor
        self.split_ = split
        self.network_ = self._build_network(data.n_inputs, data.n_features, data.V.shape[1])
        self.network_.load_state_dict({k: v.cpu() for k, v in result.state_dict.items()})
        self.centroids_ = result.centroids
        self.cluster_rates_ = result.cluster_rates
        self.cluster_sizes_ = np.bincount(result.train_labels, minlength=self.config.n_clusters)
        self.significance_ = result.significance
        self.val_auc_ = result.val_auc
        self.significant_ = result.significant
        self.best_iteration_ = result.best_iteration
        self.history_ = result.history
        self.train_time_ = result.train_time
        self.loop_state_ = result.state  # in memory only: lets continue_training go on
        self.version_ = __version__
        return self

    def _build_network(self, n_inputs, n_features, n_covariates) -> DICENetwork:
        net = DICENetwork(n_inputs, n_features, n_covariates, self.config.hidden_size, self.config.n_clusters)
        return net.eval()

    # -- inference -------------------------------------------------------------------------
    def prepare(self, X) -> PreparedData:
        return X if isinstance(X, PreparedData) else self.preprocessor_.transform(X)

    @torch.no_grad()
    def _forward(self, data: PreparedData, batch=512):
        """Representation, soft memberships and outcome probability, batch by batch on the CPU."""
        zs, cs, ps = [], [], []
        x_all = torch.from_numpy(np.ascontiguousarray(data.X, dtype=np.float32))
        v_all = torch.from_numpy(np.ascontiguousarray(data.V, dtype=np.float32))
        centroids = torch.from_numpy(np.ascontiguousarray(self.centroids_, dtype=np.float32))
        for i in range(0, len(x_all), batch):
            z = self.network_.encode(x_all[i:i + batch])
            zs.append(z)
            cs.append(self.network_.memberships(z))
            ps.append(self.network_.outcome_probability(z, v_all[i:i + batch], centroids))
        if not zs:
            k, d = self.config.n_clusters, self.config.hidden_size
            return np.zeros((0, d), np.float32), np.zeros((0, k), np.float32), np.zeros(0, np.float32)
        return torch.cat(zs).numpy(), torch.cat(cs).numpy(), torch.cat(ps).numpy()

    def transform(self, X) -> np.ndarray:
        """The learned representation z, shape (patients, d)."""
        return self._forward(self.prepare(X))[0]

    def distances(self, X) -> np.ndarray:
        z = X if isinstance(X, np.ndarray) else self.transform(X)
        return np.sqrt(((z[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(-1))

    def predict(self, X) -> np.ndarray:
        """Cluster (risk level) of each patient: the nearest centroid; 0 is the highest risk."""
        return self.distances(X).argmin(1)

    def memberships(self, X) -> np.ndarray:
        """Soft memberships from the cluster classifier, shape (patients, K)."""
        return self._forward(self.prepare(X))[1]

    def predict_proba(self, X) -> np.ndarray:
        """Predicted outcome probability: the outcome head on the patient's risk level + covariates."""
        return self._forward(self.prepare(X))[2]

    def check_inputs(self, cohort) -> None:
        """Refuse to score patients when none of the model's variables is in their events."""
        known = set(self.preprocessor_.variables_)
        present = set(cohort.events["variable"].unique())
        if len(cohort.events) and not known & present:
            raise CohortError(
                f"none of the model's {len(known)} variables appears in the events of {cohort.source or 'the cohort'} "
                f"(the model knows {', '.join(sorted(known)[:8])}{', ...' if len(known) > 8 else ''}; the events have "
                f"{', '.join(sorted(present)[:8])}{', ...' if len(present) > 8 else ''}): check the variable names")

    def input_warnings(self, cohort) -> pd.DataFrame:
        """Unknown variables, model variables absent from the events, unseen covariate levels and values
        far outside the training ranges: one row each."""
        present = set(cohort.events["variable"].unique())
        rows = [{"patient_id": "", "variable": v, "value": np.nan, "problem": "variable not seen in training; ignored"}
                for v in self.preprocessor_.unknown_variables(cohort)]
        kinds = dict(zip(self.preprocessor_.variables_, self.preprocessor_.kinds_))
        rows += [{"patient_id": "", "variable": v, "value": np.nan, "problem": ABSENT[kinds[v]]}
                 for v in self.preprocessor_.variables_ if v not in present]
        if hasattr(self.preprocessor_, "unseen_levels"):
            for r in self.preprocessor_.unseen_levels(cohort).to_dict("records"):
                rows.append({"patient_id": r["patient_id"], "variable": r["covariate"], "value": r["value"],
                             "problem": "covariate value not seen in training: read as the reference level (text in a number: as missing)"})
        out = self.preprocessor_.out_of_range(cohort)
        if len(out):
            out = out.copy()
            out["problem"] = "value outside the training range"
            rows.extend(out.to_dict("records"))
        return pd.DataFrame(rows)
