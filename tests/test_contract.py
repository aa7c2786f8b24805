"""The kernel's named contract (core/contract.py): the model and the engine build tuples whose fields
have the dtypes and shapes the compiled kernel was built for, and a wrong field is refused by name
before it reaches numba (no compilation here)."""

from __future__ import annotations

import numpy as np
import pytest
from support import ALL_MECHANISMS, load_scenario

from artysim.core import contract, layout
from artysim.model import build


@pytest.fixture(scope="module")
def km() -> contract.KernelModel:
    return build.build(load_scenario(ALL_MECHANISMS).scenario).kernel


def _batch(km, runs=3, params=5):
    ns = km.kinds.shape[0]
    return contract.BatchInputs(run0=0, keys=np.zeros(layout.n_streams(ns), dtype=np.uint64),
                                params=np.zeros((runs, params)), n_sample=0)


def _out(km, runs=3):
    ns, nr = km.kinds.shape[0], max(km.reg_mult.shape[0], 1)
    return contract.RunOutputs(totals=np.zeros((runs, layout.N_TOTALS), dtype=np.int64),
                               per_source=np.zeros((runs, ns, layout.N_PER_SOURCE), dtype=np.int64),
                               per_regime=np.zeros((runs, nr, layout.N_PER_REGIME), dtype=np.int64),
                               observed=np.zeros((runs, km.obs.shape[0], 2), dtype=np.int64),
                               per_component=np.zeros((runs, max(km.comp_src.shape[0], 1), layout.N_PER_COMPONENT),
                                                      dtype=np.int64))


def test_model_kernel_tables_satisfy_the_contract(km):
    contract.check(km, _batch(km), _out(km))
    assert km.kinds.shape[0] > 1 and km.reg_mult.shape[0] > 0  # every mechanism: several sources, regimes


def test_a_field_of_the_wrong_dtype_is_refused_by_name(km):
    with pytest.raises(TypeError, match="kinds"):
        contract.check(km._replace(kinds=km.kinds.astype(np.float64)))
    with pytest.raises(TypeError, match="threshold"):
        contract.check(km._replace(threshold=0))


def test_fields_of_disagreeing_shapes_are_refused(km):
    with pytest.raises(ValueError, match="roles"):
        contract.check(km._replace(roles=km.roles[:-1]))
    with pytest.raises(ValueError, match="totals"):
        contract.check(km, _batch(km), _out(km, runs=4))
    with pytest.raises(ValueError, match="keys"):
        contract.check(km, _batch(km)._replace(keys=np.zeros(2, dtype=np.uint64)))
