"""Training: losses, regularizers, optimizers, schedules, the loop and its callbacks."""
