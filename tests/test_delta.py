"""mer_tag.tags.delta: the recipe that rebuilds an original from its tagged copy, and the run it is built from."""

from __future__ import annotations

import random

import pytest

from mer_tag.tags import TagError, delta


def _shared(a: bytes, b: bytes) -> int:
    """The common start of `a` and `b`, byte by byte: what `_run` must find faster."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.parametrize("seed", range(24))
def test_a_run_forward_and_backward_is_the_shared_start_and_end(seed):
    rng = random.Random(seed)
    chunk = delta.CHUNK
    a = rng.randbytes(rng.choice([0, 1, 100, chunk - 1, chunk, 2 * chunk + 17]))
    b = bytearray(a)
    if b:
        b[rng.randrange(len(b))] ^= 0xFF  # one difference, anywhere (or none when it lands on an equal byte)
    i = rng.randrange(len(a) + 1)
    limit = min(len(a) - i, len(b) - i)
    assert delta._run(a, i, b, i, limit) == _shared(a[i:], bytes(b[i:]))
    assert delta._run(a, i, b, i, i, backward=True) == _shared(a[:i][::-1], bytes(b[:i])[::-1])
    assert delta._run(a, i, b, i, min(3, limit)) == min(3, _shared(a[i:], bytes(b[i:])))  # never past limit


@pytest.mark.parametrize("seed", range(6))
def test_a_recipe_rebuilds_the_original_after_inserts_deletes_and_moves(seed):
    rng = random.Random(seed)
    original = rng.randbytes(300_000)
    tagged = bytearray(original)
    tagged[0:4000] = rng.randbytes(6000)  # a bigger tag block
    moved = bytes(tagged[100_000:150_000])
    del tagged[100_000:150_000]
    tagged[200_000:200_000] = moved  # a block moved further on
    for page in range(10_000, len(tagged), 4096):
        tagged[page : page + 4] = rng.randbytes(4)  # page checksums
    recipe = delta.diff(original, bytes(tagged))
    assert delta.rebuilds(recipe, bytes(tagged), original)
    rebuilt = bytearray()
    delta.rebuild(recipe, bytes(tagged), rebuilt.extend)
    assert bytes(rebuilt) == original
    assert len(recipe["literal"]) < 20_000  # the moved block and the rest are copies, not literal bytes


def test_a_recipe_that_does_not_fit_the_file_is_a_tag_error():
    recipe = delta.diff(b"original bytes", b"tagged bytes")
    with pytest.raises(TagError, match="reads past the end of the file"):
        delta.rebuild(recipe, b"tagged", lambda block: None)  # the file shrank since
