"""Docker's side: the volume plugin protocol over a unix socket, and the server running it.

Only this package knows HTTP, JSON wire names and gunicorn; below it the
driver speaks plain Python types (nfsvol.verbs).
"""
