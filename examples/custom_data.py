"""A dataset loader of your own, for `dataset = "py:custom_data:load_digit_images"`.

`study` calls the function with no arguments. It returns the splits as arrays under the keys an
npz file would use: `x_train`, `y_train`, `x_test`, `y_test` (or just `x` and `y`, and the test
split is held out), or a `study.data.Dataset`. This module is found beside the campaign file.
"""

import numpy as np
from sklearn.datasets import load_digits

N_TRAIN = 1_500  # scikit-learn's first 1,500 digits train and validate; the other 297 test


def load_digit_images() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits as images (N, 8, 8, 1) in [0, 1], labels 0 to 9."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target
    return {
        "x_train": images[:N_TRAIN],
        "y_train": labels[:N_TRAIN],
        "x_test": images[N_TRAIN:],
        "y_test": labels[N_TRAIN:],
    }
