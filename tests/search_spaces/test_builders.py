import keras
import numpy as np
import pytest

from search_spaces import build_cnn, build_mlp, regularizer_family

IMAGE = dict(input_shape=(8, 8, 1), n_outputs=10)


def layers_of(model, cls):
    return [layer for layer in model.layers if type(layer) is cls]


def kernel_regularizers(model):
    return [
        layer.get_config()["kernel_regularizer"]
        for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    ]


def test_mlp_dropout_after_each_hidden_layer_and_on_inputs():
    model = build_mlp(
        {"hidden_layers": 3, "units": 16, "dropout": 0.3, "input_dropout": 0.1}, **IMAGE
    )
    rates = [layer.rate for layer in layers_of(model, keras.layers.Dropout)]
    assert rates == [0.1, 0.3, 0.3, 0.3]
    assert [d.units for d in layers_of(model, keras.layers.Dense)] == [16, 16, 16, 10]


def test_mlp_without_dropout_has_no_dropout_layer():
    assert not layers_of(build_mlp({"dropout": 0.0}, **IMAGE), keras.layers.Dropout)


def test_mlp_units_per_layer_activation_and_batch_norm():
    model = build_mlp(
        {"hidden_layers": 2, "units": [32, 8], "activation": "tanh", "batch_norm": True}, **IMAGE
    )
    assert [d.units for d in layers_of(model, keras.layers.Dense)] == [32, 8, 10]
    assert len(layers_of(model, keras.layers.BatchNormalization)) == 2
    acts = [a.get_config()["activation"] for a in layers_of(model, keras.layers.Activation)]
    assert acts == ["tanh", "tanh"]
    with pytest.raises(ValueError, match="units: 2 values for 3 layers"):
        build_mlp({"hidden_layers": 3, "units": [32, 8]}, **IMAGE)


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"l2": 1e-3}, {"module": "keras.regularizers", "class_name": "L2", "l2": 1e-3}),
        ({"l1": 1e-5}, {"class_name": "L1", "l1": 1e-5}),
        ({"l1": 1e-5, "l2": 1e-4}, {"class_name": "L1L2", "l1": 1e-5, "l2": 1e-4}),
        ({"regularizer": "l2", "l1": 1e-5, "l2": 1e-4}, {"class_name": "L2", "l2": 1e-4}),
    ],
)
@pytest.mark.parametrize("build", [build_mlp, build_cnn])
def test_regularizer_coefficients_in_every_kernel(build, values, expected):
    model = build(values, **IMAGE)
    configs = kernel_regularizers(model)
    assert len(configs) >= 2
    for config in configs:
        assert config["class_name"] == expected["class_name"]
        for name in ("l1", "l2"):
            if name in expected:
                assert config["config"][name] == pytest.approx(expected[name])


@pytest.mark.parametrize("build", [build_mlp, build_cnn])
def test_no_regularizer_by_default(build):
    assert all(config is None for config in kernel_regularizers(build({}, **IMAGE)))


def test_regularizer_family_inferred_from_strengths():
    assert regularizer_family({}) == "none"
    assert regularizer_family({"l1": 0.1}) == "l1"
    assert regularizer_family({"l2": 0.1, "l1": 0.0}) == "l2"
    assert regularizer_family({"l1": 0.1, "l2": 0.1}) == "l1l2"
    assert regularizer_family({"regularizer": "none", "l1": 0.1}) == "none"


@pytest.mark.parametrize(
    "optimizer, cls",
    [
        ("sgd", keras.optimizers.SGD),
        ("adam", keras.optimizers.Adam),
        ("rmsprop", keras.optimizers.RMSprop),
    ],
)
def test_optimizer_and_learning_rate(optimizer, cls):
    model = build_mlp({"optimizer": optimizer, "learning_rate": 0.05, "momentum": 0.9}, **IMAGE)
    assert isinstance(model.optimizer, cls)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    if optimizer == "sgd":
        assert model.optimizer.momentum == pytest.approx(0.9)


def test_regression_uses_mean_squared_error_and_linear_output():
    model = build_mlp({}, input_shape=(5,), n_outputs=1, task="regression")
    assert model.loss == "mean_squared_error"
    assert model.layers[-1].get_config()["activation"] == "linear"
    assert model.output_shape == (None, 1)


def test_cnn_blocks_pooling_and_spatial_dropout():
    model = build_cnn(
        {
            "conv_blocks": 2,
            "filters": [8, 16],
            "convs_per_block": 2,
            "kernel_size": 3,
            "block_dropout": 0.2,
            "spatial_dropout": True,
            "dense_layers": 1,
            "dense_units": 32,
            "dropout": 0.5,
            "batch_norm": True,
        },
        **IMAGE,
    )
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [8, 8, 16, 16]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [d.rate for d in layers_of(model, keras.layers.SpatialDropout2D)] == [0.2, 0.2]
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == [0.5]
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 2
    assert len(layers_of(model, keras.layers.BatchNormalization)) == 5


def test_cnn_plain_dropout_and_average_pooling():
    model = build_cnn({"block_dropout": 0.1, "pooling": "average"}, **IMAGE)
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == [0.1, 0.1]
    assert len(layers_of(model, keras.layers.AveragePooling2D)) == 2


def test_cnn_needs_images():
    with pytest.raises(ValueError, match="needs images"):
        build_cnn({}, input_shape=(64,), n_outputs=10)


@pytest.mark.parametrize("build", [build_mlp, build_cnn])
def test_built_models_train(build):
    x = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
    y = np.arange(32) % 10
    history = build({"dropout": 0.5, "l2": 1e-4}, **IMAGE).fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
