"""How good each lever's answer is: the generated evidence table, the grade rule, and the summaries' no-evidence marks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from twin.engine.params import GRADES
from twin.policy import evidence, scenario
from twin.policy.evidence import NO_EVIDENCE, lever_grade, no_evidence, response_fields
from twin.policy.levers import LEVER_CLASSES, ScenarioLever
from twin.studies import attribution
from twin.studies.compare import changed_levers

DOCS = Path(__file__).resolve().parent.parent / "docs" / "levers.md"


def test_the_evidence_table_in_the_docs_is_the_generated_one():
    text = DOCS.read_text(encoding="utf-8")
    assert evidence.splice(text) == text, "run: python -m twin.policy.evidence --splice docs/levers.md > levers.md.new && mv levers.md.new docs/levers.md"
    assert evidence.markdown() in text
    assert all(f"| `{kind}` |" in evidence.markdown() for kind in LEVER_CLASSES)  # one row a lever


def test_every_response_parameter_has_a_graded_range_around_its_central_value_and_a_source():
    assert response_fields(), "no lever-response parameter is declared"
    for f in response_fields():
        lo, hi = f.metadata["evidence"]
        assert f.metadata["lo"] <= lo <= f.default <= hi <= f.metadata["hi"], f.name
        assert f.metadata["grade"] in GRADES and f.metadata["doc"], f.name
        assert f.metadata["grade"] != "none" or lo <= 0.0, f"{f.name}: an unmeasured response's range must include zero"
    for kind in LEVER_CLASSES.values():  # every name a lever gives is a response parameter
        assert set(kind.responses) <= {f.name for f in response_fields()}, kind.__name__


def _kind(responses: tuple[str, ...]) -> type[ScenarioLever]:
    return type("Probe", (ScenarioLever,), {"__annotations__": {}, "responses": responses})


def test_a_levers_grade_is_its_weakest_parameters_and_none_or_nothing_is_no_evidence(monkeypatch):
    fields = {name: dataclasses.field(default=0.5, metadata={"grade": grade, "evidence": (0.0, 1.0), "unit": "-",
                                                              "lo": 0.0, "hi": 1.0, "doc": "d"})
              for name, grade in (("r", "randomized"), ("q", "quasi-experimental"), ("o", "observational"), ("n", "none"))}
    probes = []
    for name, f in fields.items():
        f.name = name
        probes.append(f)
    monkeypatch.setattr(evidence, "response_fields", lambda: probes)
    assert lever_grade(_kind(("r",))) == "randomized"
    assert lever_grade(_kind(("r", "q"))) == "quasi-experimental"
    assert lever_grade(_kind(("q", "o", "r"))) == "observational"
    assert lever_grade(_kind(("r", "n"))) == NO_EVIDENCE
    assert lever_grade(_kind(())) == NO_EVIDENCE
    marks = no_evidence([("a", _kind(("r",))()), ("b", _kind(("o", "n"))()), ("c", _kind(())())])
    assert [m.split(":")[0] for m in marks] == ["b", "c"]
    assert "range includes zero (n;" in marks[0] and "no evidence range" in marks[1]


def test_a_comparison_marks_the_levers_it_changes_that_rest_on_no_evidence():
    base, none = scenario.load("baseline"), scenario.load("no_policy")
    changed = dict(changed_levers(none, base))
    assert set(changed) == {lever.kind for lever in base.levers} - {lever.kind for lever in none.levers}
    assert changed_levers(base, base) == []
    marked = {line.split(":")[0] for line in no_evidence(changed_levers(none, base))}
    assert marked == {kind for kind in changed if lever_grade(LEVER_CLASSES[kind]) == NO_EVIDENCE}


def test_an_attribution_summary_marks_each_lever_resting_on_no_evidence():
    spec = scenario.load("baseline")
    labels = [attribution.lever_label(spec, i) for i in range(len(spec.levers))]
    year = attribution.judged_year(spec)
    table = pd.DataFrame([{"lever": label, "year": year, "metric": "revenue_cny", "zone": "", "district": "", "track": "",
                           "value": 1e9, "low": 5e8, "high": 2e9} for label in [*labels, "all"]])
    text = attribution.summary(spec, table, {label: (1e8, "") for label in labels}, 4, False)
    for label, lever in zip(labels, spec.levers):
        marked = f"note: {label}: {NO_EVIDENCE}" in text
        assert marked == (lever_grade(type(lever)) == NO_EVIDENCE), (label, text)


@pytest.mark.parametrize("argv", [["--markdown"], ["--splice"], []])
def test_the_table_command(argv, capsys, tmp_path):
    if argv == ["--splice"]:
        page = tmp_path / "levers.md"
        page.write_text(f"intro\n{evidence.START}\nstale\n{evidence.END}\nrest\n", encoding="utf-8")
        assert evidence.main([*argv, str(page)]) == 0
        assert capsys.readouterr().out == f"intro\n{evidence.markdown()}\nrest\n"
    elif argv:
        assert evidence.main(argv) == 0 and capsys.readouterr().out == evidence.markdown() + "\n"
    else:
        assert evidence.main(argv) == 2
