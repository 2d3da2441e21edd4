"""The pure render core: from a resource and the facts it depends on to the complete list
of child manifests it needs. No I/O here; the controllers apply what these return.

Builder functions produce plain dicts, so user values are data, never spliced into text:
there is nothing to escape and no way for a value to change a manifest's structure.
"""
