"""Remote workers: a process that keeps one model warm, takes jobs from the Redis queue
(Dramatiq), fetches each video from the server and reports events and the result back to it.

`broker` is the wire format both sides share; `client` the worker's HTTP calls to the server;
`uplink` batches progress events; `runner` runs one job; `process` is `chronicon worker`.
"""
