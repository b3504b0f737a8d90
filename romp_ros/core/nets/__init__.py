"""ROMP / BEV networks, their factory and checkpoint loading.

Entry points:
    build_model(name, backbone)        -> nn.Module (factory)
    load_into(model, path_or_state)    -> LoadReport (checkpoint)

Submodules are imported on demand so that importing this package stays cheap.
"""
