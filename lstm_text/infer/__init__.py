"""Inference: the packed weights (``packed``), single-token stepping (``step``), sampling and generation
(``generate``), and the NumPy classifier (``classifier``, torch-free)."""
