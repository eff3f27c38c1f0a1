"""Training: TFX's Trainer, recording in the model what it was trained on and started from."""
