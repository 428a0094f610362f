"""Hydra + Lightning research template: models, data modules and Lightning modules."""
