"""Test oracles: literal, slow reference implementations that the package must agree with.

The tests import them as ``tests.reference.<name>``, the tools in ``tools/`` too (run from the
repository root with ``PYTHONPATH=.``): ``mot`` (eval mot before issue 13), ``road`` (the official
ROAD++ protocol and synthetic data for it), ``sort`` (a SORT-style tracker), ``stm`` (the STMixer
formulas).
"""
