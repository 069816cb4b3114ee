"""The model families: one package each, holding the family's networks, feature sources, predictors, weights
entries and preprocessing, with its declarations (`MODELS`, `SOURCES`, `WEIGHTS`, `GROUPS`) in the package's
`__init__`. `rqvqa.registry.FAMILIES` lists them; `docs/architecture.md` shows how to add one."""
