"""Video input: probing, one streaming decode, and the samplers fed from it."""
