"""Inference: the packed weights (``packed``), single-token stepping (``step``), sampling and generation
(``generate``), continuous batching of many generations (``batch``), and the NumPy classifier
(``classifier``, torch-free)."""
