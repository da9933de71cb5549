"""Training curves: the zoo's two stages laid end to end."""

from hct.train.figures import training_curves_figure


def test_stages_follow_each_other_on_the_step_axis():
    rows = [
        {"stage": "patch", "step": 5, "epoch": 1, "loss": 0.7},
        {"stage": "patch", "step": 10, "epoch": 1, "val_auc": 0.6, "val_loss": 0.6},
        {"stage": "image", "step": 4, "epoch": 1, "loss": 0.5},
        {"stage": "image", "step": 8, "epoch": 1, "val_auc": 0.7, "val_loss": 0.5},
    ]
    fig = training_curves_figure(rows)
    by_name = {trace.name: trace for trace in fig.data}
    assert list(by_name["patch training loss"].x) == [5]
    assert list(by_name["image training loss"].x) == [14]  # continues after the patch stage's step 10
    assert list(by_name["image validation AUC"].x) == [18] and by_name["image validation AUC"].yaxis == "y2"
    assert training_curves_figure([]) is None
