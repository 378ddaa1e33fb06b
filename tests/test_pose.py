"""pose.py, the one statement of the 45-vector's layout: names in the official order, the named spans and
groups cover the vector exactly, ranges, sanitizing and the {name: value} conversions."""
import numpy as np
import pytest

from tha4bridge import pose as P


def span_names(s: slice) -> list[str]:
    return list(P.PARAMETER_NAMES[s])


def test_spans_partition_the_vector_in_the_official_order():
    spans = [P.EYEBROW, P.EYE, P.IRIS_SMALL, P.MOUTH, P.IRIS_ROTATION, P.HEAD_NECK, P.BODY,
             slice(P.BREATHING, P.BREATHING + 1)]
    covered = [i for s in spans for i in range(P.NUM_PARAMETERS)[s]]
    assert covered == list(range(P.NUM_PARAMETERS))  # contiguous, in order, nothing twice, nothing left out
    assert all(n.startswith("eyebrow_") for n in span_names(P.EYEBROW)) and len(span_names(P.EYEBROW)) == 12
    assert all(n.startswith("eye_") for n in span_names(P.EYE)) and len(span_names(P.EYE)) == 12
    assert all(n.startswith("mouth_") for n in span_names(P.MOUTH)) and len(span_names(P.MOUTH)) == 11
    assert span_names(P.HEAD_NECK) == ["head_x", "head_y", "neck_z"]
    assert span_names(P.BODY) == ["body_y", "body_z"] and P.PARAMETER_NAMES[P.BREATHING] == "breathing"
    # left before right, for every paired parameter
    for i, name in enumerate(P.PARAMETER_NAMES):
        if name.endswith("_left"):
            assert P.PARAMETER_NAMES[i + 1] == name[: -len("left")] + "right"


def test_network_inputs():
    assert span_names(P.FACE_INPUT)[-1] == "iris_rotation_y" and len(span_names(P.FACE_INPUT)) == 39
    assert span_names(P.TEACHER_FACE_INPUT)[0] == "eye_wink_left" and len(span_names(P.TEACHER_FACE_INPUT)) == 27
    assert span_names(P.ROTATION_INPUT) == ["head_x", "head_y", "neck_z", "body_y", "body_z", "breathing"]


def test_groups_name_what_users_address_together():
    assert set(P.GROUPS) == {"brows", "eyes", "iris", "mouth", "head", "body"}
    names = {g: [P.PARAMETER_NAMES[i] for i in idx] for g, idx in P.GROUPS.items()}
    assert names["iris"] == ["iris_small_left", "iris_small_right", "iris_rotation_x", "iris_rotation_y"]
    assert names["head"] == ["head_x", "head_y", "neck_z"]
    every = np.concatenate(list(P.GROUPS.values()))
    assert len(set(every.tolist())) == len(every) == P.NUM_PARAMETERS - 1  # all but breathing, once each


def test_ranges_and_sanitize():
    signed = [n for n, lo in zip(P.PARAMETER_NAMES, P.LOWER) if lo == -1.0]
    assert signed == ["iris_rotation_x", "iris_rotation_y", "head_x", "head_y", "neck_z", "body_y", "body_z"]
    p = P.NEUTRAL.copy()
    p[P.INDEX["head_x"]], p[P.INDEX["mouth_aaa"]], p[P.INDEX["neck_z"]] = 3.0, np.nan, -np.inf
    fixed, fixes = P.sanitize(p)
    assert fixed[P.INDEX["head_x"]] == 1.0 and fixed[P.INDEX["mouth_aaa"]] == 0.0 and fixed[P.INDEX["neck_z"]] == 0.0
    assert (fixes.non_finite, fixes.out_of_range) == (2, 1) and fixed.dtype == np.float32
    assert np.isnan(p[P.INDEX["mouth_aaa"]])  # a copy: the caller's array is untouched
    batch, _ = P.sanitize(np.stack([p, p]))
    assert batch.shape == (2, P.NUM_PARAMETERS)
    with pytest.raises(ValueError, match="45 values"):
        P.sanitize(np.zeros(44))


def test_dict_conversions():
    p = P.pose_from_dict({"head_x": 0.5, "breathing": 1.0})
    assert P.pose_to_dict(p)["head_x"] == 0.5 and p[P.BREATHING] == 1.0 and p.sum() == 1.5
    with pytest.raises(ValueError, match="'head_z'"):
        P.pose_from_dict({"head_z": 1.0})
    assert P.pose_from_dict({"head_z": 1.0}, strict=False).sum() == 0.0
