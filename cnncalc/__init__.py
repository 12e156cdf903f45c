"""cnncalc: shapes, parameters and MACs/FLOPs of convolutional networks from YAML specs, proved by execution.

    import cnncalc
    net = cnncalc.load("resnet50")                 # a spec file, or a bundled name
    summary = cnncalc.summarize(net, batch=8)      # rows and totals
    weights = cnncalc.init_weights(net, seed=0)    # PyTorch's default init, state_dict names
    y = cnncalc.run(net, x, weights)               # NumPy forward pass on x [N, *input]
    result = cnncalc.verify(net, batch=2)          # executed vs calculated shape per layer
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, name there); imported on first use, so `cnncalc summarize` never pays for numpy.
# No public name is also a submodule's name: importing a submodule would otherwise replace the function.
_EXPORTS = {
    "load": ("cnncalc.spec", "load"), "parse": ("cnncalc.spec", "parse"),
    "summarize": ("cnncalc.analyze", "analyze"),
    "init_weights": ("cnncalc.engine", "init_weights"), "load_weights": ("cnncalc.engine", "load_weights"),
    "save_weights": ("cnncalc.engine", "save_weights"), "run": ("cnncalc.engine", "run"),
    "verify": ("cnncalc.verification", "verify"), "CnnCalcError": ("cnncalc.errors", "CnnCalcError"),
}
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # what type checkers see of the names `__getattr__` imports on first use
    from cnncalc.analyze import analyze as _analyze
    summarize = _analyze
    from cnncalc.engine import init_weights as init_weights, load_weights as load_weights, run as run
    from cnncalc.engine import save_weights as save_weights
    from cnncalc.errors import CnnCalcError as CnnCalcError
    from cnncalc.spec import load as load, parse as parse
    from cnncalc.verification import verify as verify


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")
