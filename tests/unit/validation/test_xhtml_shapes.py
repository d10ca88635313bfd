"""A narrative's verdict is taken from its shape (text runs replaced) only when that is exactly the
verdict of the div itself: compared over real narratives and thousands of random mutations that
insert markup, quotes, entities, comments, CDATA and characters XML forbids."""

from __future__ import annotations

import random

import pytest

from exporter.validation import xhtml

NS = 'xmlns="http://www.w3.org/1999/xhtml"'
DIVS = [
    f'<div {NS}>blood glucose 5.8 mmol/L on 2024-07-01</div>',
    f'<div {NS}><p>blood pressure <b>137/82</b> mmHg</p><ul><li>a</li><li>b</li></ul></div>',
    f'<div {NS}><table><tr><td title="x">1</td></tr></table><img src="a.png" alt=""/></div>',
    f'<div {NS}>  </div>',
    f'<div {NS}><a href="https://example.org/x">link</a> tail</div>',
]
PIECES = ["<", ">", "&", "&amp;", "&lt;", '"', "'", "-", "--", "<!-- c -->", "<![CDATA[x]]>", "]]>", "<?pi x?>",
          "\x01", "\x0b", "\ufffe", " ", "\t", "x", "<b>", "</b>", "<script>", 'onclick="z"', "<br/>", "=", "/",
          "<!DOCTYPE x>", "\u00e4", "\u00a0", "\u2003", "\r", "\n", "<p title='a>b'>", "<i>"]


def _mutants(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = rng.choice(DIVS)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(s) + 1)
            if rng.random() < 0.7:
                s = s[:i] + rng.choice(PIECES) + s[i:]
            else:
                s = s[:i] + s[i + rng.randint(1, 4):]
        out.append(s)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_shape_verdict_is_the_div_verdict(seed):
    mutants = _mutants(seed, 1500)
    verdicts = set()
    for div in DIVS + mutants:
        xhtml.forget()
        expected = xhtml._analysed.__wrapped__(div)
        assert xhtml._analyse(div) == expected, div
        assert xhtml._analyse(div) == expected, div  # and again, from the cache
        verdicts.add(expected[0] is None)
    assert verdicts == {True, False}


def test_narratives_of_one_shape_are_parsed_once():
    xhtml.forget()
    for value in range(50):
        assert xhtml.check_xhtml(f'<div {NS}>glucose {value} mmol/L</div>') is None
    assert xhtml._analysed.cache_info().misses == 1


def test_shapes_are_found_in_linear_time():
    """A long text run that never reaches a tag, or ends in an entity: the old `>…<` regex backtracked
    quadratically on both (~40 ms for 4 KB). 1 MB of them must take well under a second."""
    import time

    hostile = [f'<div {NS}><p>{i:04d}' + "a" * 3950 + "&amp;</p></div>" for i in range(125)]
    hostile += [f'<div {NS}>{i:04d}' + "a" * 4000 for i in range(125)]
    assert sum(map(len, hostile)) > 1_000_000
    xhtml.forget()
    t0 = time.perf_counter()
    verdicts = [xhtml.check_xhtml(d) for d in hostile]
    assert time.perf_counter() - t0 < 0.5
    assert verdicts[0] is None and "not well-formed" in verdicts[-1]
    assert xhtml.shape(f'<div {NS}>a<b>c &amp; d</b>e</div>') == f'<div {NS}>x<b>c &amp; d</b>x</div>'


def test_a_lone_surrogate_is_a_problem_named_by_position_not_an_exception():
    """Found by the validator (not a "could not be evaluated" warning), and the text is not quoted."""
    xhtml.forget()
    problem = xhtml.check_xhtml(f'<div {NS}>Name \ud800 12</div>')
    assert problem == "narrative is not well-formed XHTML: no character at position 47"
    assert xhtml.has_text(f'<div {NS}>Name \ud800 12</div>') is False
