"""Screens: the main view, the wizards and every modal the app opens."""
