"""Ready-made spaces: regularization grids for each builder and an exploratory space."""

from __future__ import annotations

from search_spaces._params import Choice, Condition, Float, Int
from search_spaces._space import SearchSpace

DROPOUT_RATES = (0.0, 0.25, 0.5)
L1_STRENGTHS = (0.0, 1e-5, 1e-4)
L2_STRENGTHS = (0.0, 1e-4, 1e-3)


def regularization_grid(family: str = "l2") -> SearchSpace:
    """Dropout x a kernel regularizer's strength, 0 included, so the grid holds its own baseline.

    `family` is "l2" (Dropout x L2, the default campaign), "l1", or "l1l2" (Dropout x L1 x L2).
    The same space serves both builders: `dropout` is the MLP's hidden Dropout and the CNN's head
    Dropout.
    """
    strengths = {"l1": {"l1": L1_STRENGTHS}, "l2": {"l2": L2_STRENGTHS}}
    strengths["l1l2"] = strengths["l1"] | strengths["l2"]
    if family not in strengths:
        raise ValueError(f"family: {family!r} is not one of l1, l2, l1l2")
    return SearchSpace(
        {"dropout": Choice(DROPOUT_RATES)}
        | {name: Choice(values) for name, values in strengths[family].items()}
    )


def exploratory_space(builder: str = "mlp") -> SearchSpace:
    """Learning rate, width, Dropout and a regularizer family whose strengths are conditional."""
    width = {"mlp": {"units": Int(32, 256, step=32)}, "cnn": {"filters": Choice((16, 32, 64))}}
    if builder not in width:
        raise ValueError(f"builder: {builder!r} is not one of mlp, cnn")
    return SearchSpace(
        {"learning_rate": Float(1e-4, 1e-2, log=True)}
        | width[builder]
        | {
            "dropout": Float(0.0, 0.5),
            "regularizer": Choice(("none", "l1", "l2", "l1l2")),
            "l1": Float(1e-6, 1e-3, log=True, condition=Condition("regularizer", ("l1", "l1l2"))),
            "l2": Float(1e-6, 1e-2, log=True, condition=Condition("regularizer", ("l2", "l1l2"))),
        }
    )


PRESETS = {
    "dropout-l2": lambda builder: regularization_grid("l2"),
    "dropout-l1": lambda builder: regularization_grid("l1"),
    "dropout-l1l2": lambda builder: regularization_grid("l1l2"),
    "explore": exploratory_space,
}
