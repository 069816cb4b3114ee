"""VIDEVAL (Tu et al., "UGC-VQA: Benchmarking Blind Video Quality Assessment for User Generated Content",
TIP 2021) in Python: the 60 VIDEVAL / VIDEVAL_light features of the official MATLAB release and its released
All-Combined models. See `docs/videval.md` for the fidelity table and the speed figures."""
