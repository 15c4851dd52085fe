"""Reusable widgets: the connection list, the schedule grid, the check-box tree and input fields."""
