"""The built-in learning content, filtered and ranked for one child."""
