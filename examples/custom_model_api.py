"""The custom-model study of examples/custom_model.toml from Python: the campaign as a dict,
the builder and the loader as the functions themselves, with the other engine and a random
search over continuous ranges.

    python examples/custom_model_api.py        # writes runs/custom-model-api
"""

from custom_model import build, load

import study

CAMPAIGN = {
    "campaign": {
        "name": "custom-model-api",
        "engine": "keras-tuner",
        "strategy": "random",
        "max_trials": 6,
        "seeds": [0, 1],
        "objective": "val_accuracy",
    },
    "data": {"dataset": load},
    "model": {"builder": build, "width": 64, "blocks": 2},
    "train": {"epochs": 10, "batch_size": 64, "optimizer": "adam", "learning_rate": 0.001},
    "space": {
        "dropout": {"low": 0.0, "high": 0.5},
        "l2": {"low": 1e-5, "high": 1e-2, "log": True},
    },
}

if __name__ == "__main__":
    result = study.run(CAMPAIGN, out="runs/custom-model-api")
    print(result.chosen)
    print(result.trials[["trial", "seed", "dropout", "l2", "best_val_accuracy"]])
    print("report:", result.report)
