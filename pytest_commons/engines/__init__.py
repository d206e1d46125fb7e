"""In-process engines that stand in for real services."""
