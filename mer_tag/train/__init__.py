"""Training: datasets, artist-grouped splits, the epoch loop, evaluation, and the run that ties them together."""
