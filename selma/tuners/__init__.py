"""Adapter methods of our own, written as PEFT tuners (config / layer / model), registered with PEFT at import.

Import a method's package (e.g. `selma.tuners.style_inject`) to use it; this package itself imports nothing
heavy, so `import selma` stays light.
"""
