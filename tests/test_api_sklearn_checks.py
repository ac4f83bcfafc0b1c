"""scikit-learn's own estimator suite (``check_estimator``'s checks, one pytest case each)
on engine.MLPClassifier and engine.MLPRegressor with their default parameters, as
scikit-learn runs it on its MLPs."""

from sklearn.utils.estimator_checks import parametrize_with_checks

import engine


@parametrize_with_checks([engine.MLPClassifier(), engine.MLPRegressor()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
