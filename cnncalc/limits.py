"""The limits cnncalc holds every input to, stated once. Each keeps the work (time, memory, the length of what
is printed) bounded by the size of a spec, never by the values written in it."""
from __future__ import annotations

MAX_INT = 10**12         # any integer a user writes: a size, a count, a stride, a batch, an argument's value
MAX_REAL = 1e12          # any real number a user writes (scale factors, eps, slopes)
MAX_DIM = 10**12         # any size a calculation reaches on one axis
MAX_FILE_BYTES = 32 * 2**20  # a spec file
MAX_YAML_NODES = 500_000     # values a spec's YAML expands to, aliases included (a "billion laughs" bomb)
MAX_YAML_DEPTH = 64          # nesting of lists and mappings in a spec
MAX_SET_NODES = 10_000       # values one --set value expands to
MAX_LAYERS = 10_000      # layers a spec expands to
MAX_BLOCK_DEPTH = 16     # blocks used inside blocks
MAX_EXPRESSION = 1_000   # characters of one `${...}` expression
MAX_OPTION = 10_000      # characters of one command-line value (--set, --input, --columns, ...)
MAX_TITLE = 200          # characters of a network's name, as shown in titles
MAX_NAME = 200           # characters of a layer's full dotted name (a cell on every row of a table)
MAX_ERRORS = 100         # errors one spec reports at once (loading stops there; the rest show once these are fixed)
