"""One module per tab of the UI; each ``build(services, shared)`` lays out its tab and wires it."""
