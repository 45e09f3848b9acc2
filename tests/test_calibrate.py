"""The decision threshold chosen on dev (calibrate.tune_threshold); `train --tune-threshold` is
tested in test_train.py, the runtime deciding at it in test_export.py and test_architecture.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_document

from docunet_rt.calibrate import tune_threshold
from docunet_rt.data import Label


def labelled(rng, n_docs=6):
    """Documents whose gold facts are known, and pair logits placing gold pairs around -0.45
    and a wrong one at -1.2: logit 0 finds nothing, -0.5 … -1.2 finds exactly the gold facts."""
    docs, pairs, logits = [], [], []
    for i in range(n_docs):
        d = random_document(rng, 40, 4, doc_id=f"d{i}")
        d.labels = [Label(0, 1, "r1"), Label(2, 3, "r2")]
        p = np.array([(h, t) for h in range(4) for t in range(4) if h != t])
        lg = np.full((len(p), 4), -5.0, dtype=np.float32)
        for q, (h, t) in enumerate(p):
            if (h, t) == (0, 1):
                lg[q, 1] = -0.45
            elif (h, t) == (2, 3):
                lg[q, 2] = -0.45
            elif (h, t) == (1, 0):
                lg[q, 3] = -1.2
        docs.append(d)
        pairs.append(p)
        logits.append(lg)
    return docs, pairs, logits


def test_the_threshold_with_the_best_dev_f1_is_chosen(rng):
    docs, pairs, logits = labelled(rng)
    choice = tune_threshold(docs, pairs, logits, ["r1", "r2", "r3"])
    assert choice.f1_at_zero == 0.0 and choice.f1 == pytest.approx(1.0)
    assert choice.threshold == -0.5  # of the perfect thresholds (-0.5 … -1.2), nearest 0
    curve = {t: f for t, _, _, f in choice.curve}
    assert curve[-1.3] < 1.0 and curve[-0.4] == 0.0 and len(curve) == 41


def test_tuning_needs_labels_and_the_reference(rng):
    docs, pairs, logits = labelled(rng)
    with pytest.raises(ValueError, match="must contain 0"):
        tune_threshold(docs, pairs, logits, ["r1", "r2", "r3"], grid=[-1.0, 1.0])
    for d in docs:
        d.labels = []
    with pytest.raises(ValueError, match="needs labelled documents"):
        tune_threshold(docs, pairs, logits, ["r1", "r2", "r3"])
