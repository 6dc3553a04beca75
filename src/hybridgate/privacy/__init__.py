"""Privacy: what may be logged and where prompts may go."""
