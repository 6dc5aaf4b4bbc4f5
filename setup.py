"""The optional C extension: the fused LSTM cell of ``lstm-text classify`` (lstm_text/infer/_cell.c).

``optional=True``: without a C compiler the install still succeeds, and classification runs the same steps in
NumPy (about half the speed). Everything else is configured in pyproject.toml.
"""

from setuptools import Extension, setup

# -fno-trapping-math lets the compiler vectorise the gates' clamps (no floating-point exceptions are read)
cell = Extension(
    "lstm_text.infer._cell",
    ["lstm_text/infer/_cell.c"],
    extra_compile_args=["-O3", "-fno-trapping-math"],
    optional=True,
)
setup(ext_modules=[cell])
