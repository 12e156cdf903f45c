"""The Python API for notebooks: its names stay functions whatever was imported before."""
import importlib

import numpy as np

import cnncalc


def test_api_names_survive_submodule_imports():
    for module in ("cnncalc.analyze", "cnncalc.verification", "cnncalc.engine", "cnncalc.spec"):
        importlib.import_module(module)
    assert all(callable(getattr(cnncalc, name)) for name in
               ("load", "parse", "summarize", "init_weights", "load_weights", "save_weights", "run", "verify"))


def test_api_round_trip_on_a_bundled_network():
    net = cnncalc.load("lenet5")
    summary = cnncalc.summarize(net, batch=3)
    assert summary.totals.trainable_params == 61_706 and summary.rows[-1].output_shape == (3, 10)
    weights = cnncalc.init_weights(net, seed=1)
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    y = cnncalc.run(net, x, weights)
    assert y.shape == (3, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y, cnncalc.run(net, x, weights))  # deterministic
    assert cnncalc.verify(net, batch=2).passed
