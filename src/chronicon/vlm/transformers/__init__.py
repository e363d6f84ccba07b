"""The transformers runtime: torch + transformers on this machine, as one removable wing.

`backend.py` is the backend (registry name `transformers`, alias `local`); `placement.py`
decides device, precision and whether the model fits; `speedups/` holds the CPU patches behind
`apply_cpu_speedups`. Nothing outside this folder imports torch for the VLM.
"""
