"""cnncalc: shapes, parameters and MACs/FLOPs of convolutional networks from YAML specs, proved by execution.

    import cnncalc
    net = cnncalc.load("resnet50")                 # a spec file, or a bundled name
    summary = cnncalc.analyze(net, batch=8)        # rows and totals
    weights = cnncalc.init_weights(net, seed=0)    # PyTorch's default init, state_dict names
    y = cnncalc.run(net, x, weights)               # NumPy forward pass on x [N, *input]
    result = cnncalc.verify(net, batch=2)          # executed vs calculated shape per layer
"""

__version__ = "0.1.0"

# imported on first use, so `cnncalc summarize` never pays for numpy
_EXPORTS = {
    "load": "cnncalc.spec", "parse": "cnncalc.spec", "analyze": "cnncalc.analyze",
    "init_weights": "cnncalc.engine", "load_weights": "cnncalc.engine", "save_weights": "cnncalc.engine",
    "run": "cnncalc.engine", "verify": "cnncalc.verify", "CnnCalcError": "cnncalc.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")
