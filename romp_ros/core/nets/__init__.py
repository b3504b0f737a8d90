"""ROMP / BEV networks, their factory, checkpoint loading and seeded test weights.

Entry points:
    build_model(name, backbone)        -> nn.Module (factory)
    load_into(model, path_or_state)    -> LoadReport (checkpoint)
    seeded_state_dict(name, backbone)  -> dict (seeded)

Submodules are imported on demand so that importing this package stays cheap.
"""
