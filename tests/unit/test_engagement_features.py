from operators.engagement import FEATURE_BASES, feature_names, features_from_sums
from operators.exact_sums import SCALE

W = (3_600_000, 21_600_000, 86_400_000)


def test_feature_names_use_hour_labels():
    names = feature_names(W)
    assert names[0] == "views_1h" and "engagement_score_24h" in names and len(names) == 27


def test_rates_from_sums():
    # views, likes, shares, comments, skips, watch_ms, completion_sum, score_sum (the last two in units)
    sums = [[4, 1, 1, 0, 2, 10_000, 3 * SCALE, 15 * SCALE // 2], [0] * 8, [8, 2, 2, 2, 1, 20_000, 4 * SCALE, 11 * SCALE]]
    f = dict(zip(feature_names(W), features_from_sums(sums)))
    assert f["views_1h"] == 4 and f["completion_rate_1h"] == 0.75 and f["engagement_rate_1h"] == 0.5
    assert f["engagement_score_1h"] == 7.5
    assert f["views_6h"] == 0 and f["completion_rate_6h"] == 0.0 and f["engagement_rate_6h"] == 0.0
    assert f["engagement_rate_24h"] == 0.75
    assert len(FEATURE_BASES) * 3 == len(f)
