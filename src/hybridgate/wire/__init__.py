"""Wire formats: pure translations between the internal OpenAI shape and other providers' APIs.

Used by backends (outbound) and by the HTTP edge (inbound). Nothing here performs I/O, and nothing
here imports from api/, pipeline, backends/ or any other layer above types, config and errors.
"""
