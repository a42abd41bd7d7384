"""The {% url %} builtin (synapse/templatetags/fast_url.py) writes what reverse() writes."""
import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, clear_script_prefix, reverse, set_script_prefix

from synapse.templatetags.fast_url import FastURLNode, fast_reverse


def render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def test_the_default_url_tag_is_replaced():
    template = Template("{% url 'cycles:planning' 1 %}")
    assert any(isinstance(node, FastURLNode) for node in template.nodelist)


@pytest.mark.parametrize("name,args", [
    ("cycles:planning", [7]), ("cycles:planning", [0]), ("cycles:cycle-list", []),
    ("cycles:evidence-download", [12, 345]), ("versioning:version-history", [3, "planning"]),
    ("cycles:test-result", [5, 9]),
])
def test_it_writes_what_reverse_writes(name, args):
    expected = reverse(name, args=args)
    assert fast_reverse(name, list(args)) == expected
    assert fast_reverse(name, list(args)) == expected  # from the cached shape
    assert render("{% url name a b %}" if len(args) == 2 else "{% url name a %}" if args else "{% url name %}",
                  name=name, a=args[0] if args else None, b=args[1] if len(args) > 1 else None) == expected


def test_keyword_arguments_and_as_var_work_as_before():
    expected = reverse("cycles:planning", kwargs={"pk": 4})
    assert render("{% url 'cycles:planning' pk=4 %}") == expected
    assert render("{% url 'cycles:planning' 4 as link %}[{{ link }}]") == f"[{expected}]"
    assert render("{% url 'no-such-view' 4 as link %}[{{ link }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-view' 4 %}")
    with pytest.raises(NoReverseMatch):
        fast_reverse("cycles:planning", [1, 2])


def test_the_script_prefix_is_kept():
    set_script_prefix("/synapse/")
    try:
        assert fast_reverse("cycles:planning", [8]) == "/synapse/cycle-reports/8/planning/"
    finally:
        clear_script_prefix()
    assert fast_reverse("cycles:planning", [8]) == "/cycle-reports/8/planning/"
