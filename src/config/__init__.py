"""The config as the user gives it: checked at start-up (schema, checks, command line) and built into objects."""
