"""Tables after training: the per-column likelihood, anomaly scores, imputation, synthetic rows.

Everything here reads a run directory whose data is a table read by column (``--data x.csv``);
the functions are also the CLI's ``vaelab score``, ``vaelab impute`` and ``vaelab sample --out
rows.csv``.
"""
