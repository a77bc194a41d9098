import pytest

from mer_tag.labels import MIREX, QUADRANTS, VALENCE2, LabelSet, label_map


def test_quadrants_answer_to_code_number_name_and_adjective():
    assert QUADRANTS.names[0] == "Q1 positive/energetic" and len(QUADRANTS) == 4
    assert [QUADRANTS.index(k) for k in ("Q3", "q3", "3", "Q3 negative/calm", "sad")] == [2] * 5
    assert MIREX.index("Wistful") == 2 and MIREX.index("brooding") == 2  # the MIREX names are unchanged
    with pytest.raises(KeyError):
        QUADRANTS.index("positive")  # two quadrants are positive: no guessing


def test_the_valence_map_folds_quadrants_into_two_classes():
    valence = label_map("valence")
    assert valence.target is VALENCE2 and VALENCE2.names == ("Positive", "Negative")
    assert valence.table(QUADRANTS) == [0, 1, 1, 0]  # Q1 and Q4 positive, Q2 and Q3 negative
    assert label_map("arousal").table(QUADRANTS) == [0, 0, 1, 1]


def test_inline_and_table_maps_find_a_builtin_set_or_keep_their_order():
    inline = label_map("Q1=Negative, Q2=Positive,Q3=Positive,Q4=Negative")
    assert inline.target is VALENCE2 and inline.table(QUADRANTS) == [1, 0, 0, 1]
    custom = label_map({"1": "Loud", "2": "Loud", "3": "Soft", "4": "Soft"})
    assert custom.target == LabelSet("custom", ("Loud", "Soft")) and custom.table(QUADRANTS) == [0, 0, 1, 1]


def test_a_map_that_leaves_a_class_out_or_cannot_be_read_is_an_error():
    with pytest.raises(KeyError, match="Q4"):
        label_map("Q1=A,Q2=A,Q3=B").table(QUADRANTS)
    with pytest.raises(ValueError):
        label_map("Q1:A")
    with pytest.raises(KeyError):
        label_map("Q9=A").table(QUADRANTS)
