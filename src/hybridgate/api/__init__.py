"""Step 1 of the flow: the HTTP edge. Wire formats only; the pipeline does the work."""
