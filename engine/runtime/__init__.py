"""The long-running engine that `skysync run` and the TUI drive, and the pieces only it uses."""
