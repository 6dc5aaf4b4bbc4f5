"""Inference: the packed weights (``packed``), single-token stepping (``step``), sampling and generation
(``generate``), continuous batching of many generations (``batch``), the interactive session (``session``),
steering towards a classifier's label (``steer``), and the NumPy classifier (``classifier``, torch-free)."""
