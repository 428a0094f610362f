"""Glue between Hydra configs and Lightning: resolvers, start-up checks, builders, run records, console output."""
