"""SMPL-family body models: joint names, prepared model files, torch models, synthetic data.

Modules:
    joint_names        joint names, kinematic tree, skeleton edges, ROS4HRI frame names
    model_files        the models directory (.npz arrays + manifest.json) and its loader
    prepare            ``prepare-models``: official SMPL / SMIL downloads -> models directory
    restricted_pickle  loading the official pickles without executing anything
    smpl               BodyModel (SMPL / SMPL-A / SMIL) and SMPLAWithInfants (BEV)
    synthetic          a synthetic body model in the official file formats (tests, demo)
"""
