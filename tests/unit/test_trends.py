from operators.trends import MINUTE_MS, RegionTrends, geometry
from operators.exact_sums import SCALE


def u(score: float) -> int:
    """A score in the units the job sums (operators/exact_sums.py)."""
    return round(score * SCALE)


GEO = geometry([15 * MINUTE_MS, 60 * MINUTE_MS])
T0 = 1000 * MINUTE_MS


def test_top_k_with_velocity_against_the_previous_window():
    st = RegionTrends()
    st.add(GEO, "a", T0 - 20 * MINUTE_MS, u(4.0), 4)  # previous 15 min window
    st.add(GEO, "a", T0 - 5 * MINUTE_MS, u(10.0), 8)
    st.add(GEO, "b", T0 - 1 * MINUTE_MS, u(10.0), 9)
    st.add(GEO, "c", T0 - 2 * MINUTE_MS, u(3.0), 3)
    st.advance(GEO, T0)
    top = st.top(GEO, 15 * MINUTE_MS, 2)
    assert [e["video"] for e in top] == ["a", "b"]  # tie on 10.0: by id
    assert top[0]["velocity"] == (10.0 - 4.0) / 0.25 and top[1]["velocity"] == 10.0 / 0.25
    assert top[0]["views"] == 8
    assert [e["video"] for e in st.top(GEO, 60 * MINUTE_MS, 3)] == ["a", "b", "c"]


def test_videos_leave_when_their_minutes_leave_every_window():
    st = RegionTrends()
    st.add(GEO, "a", T0, u(1.0), 1)
    st.advance(GEO, T0 + 60 * MINUTE_MS)
    assert st.top(GEO, 15 * MINUTE_MS, 5) == [] and "a" in st.videos  # still in the 2 h window
    st.advance(GEO, T0 + 121 * MINUTE_MS)
    assert st.videos == {}


def test_non_positive_scores_never_trend():
    st = RegionTrends()
    st.add(GEO, "skipped", T0, u(-0.5), 1)
    st.advance(GEO, T0 + MINUTE_MS)
    assert st.top(GEO, 15 * MINUTE_MS, 5) == []
