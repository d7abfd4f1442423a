"""Model compression: calibration-free folding and structured-pruning baselines."""
