from operators.engagement import feature_names

W = (3_600_000, 21_600_000, 86_400_000)


def test_feature_names_use_hour_labels():
    names = feature_names(W)
    assert names[0] == "views_1h" and "engagement_score_24h" in names and len(names) == 27
