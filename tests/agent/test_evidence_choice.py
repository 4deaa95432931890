"""How the extractive answerer picks its evidence: answer types, questions that are not answers, the page chosen by
its support, near-duplicate units, the margin option; on a tiny real index and on hand-built sentences."""

from __future__ import annotations

import pytest

from polyseek.agent import AskOptions, ask
from polyseek.agent import answertype as at
from polyseek.agent import evidence as ev
from polyseek.agent.answer import choose_evidence, near_duplicate, page_support

QUESTIONNAIRE_MD = """# Survey of harbour masters

Please answer every question about your harbour.

1. If your harbour has a pilot service, what is the maximum number of ships a pilot guides per day?
2. If your harbour has a pilot service, do the pilots work in shifts at night?
3. Does the harbour master keep a register of visiting yachts?
"""

HARBOUR_MD = """# The old harbour of Kinsale

The harbour survey of Kinsale described the fishing fleet of the old harbour and the families who owned it.
The survey was carried out by the county council with help from the fishermen's association.
In total, 214 fishing boats were moored in the old harbour when the survey closed.
"""


def _index_of(tmp_path_factory, name: str, files: dict[str, str]):
    """A real index of these Markdown files (name -> text), built in a temp folder."""
    import polyseek

    root = tmp_path_factory.mktemp(name) / "corpus"
    root.mkdir()
    for fname, text in files.items():
        (root / fname).write_text(text, encoding="utf-8")
    idx = polyseek.open(tmp_path_factory.mktemp(f"{name}-index") / "idx")
    assert idx.add([root]).indexed == len(files)
    return idx


@pytest.fixture(scope="module")
def typed_index(tmp_path_factory):
    idx = _index_of(tmp_path_factory, "typed", {"questionnaire.md": QUESTIONNAIRE_MD, "harbour.md": HARBOUR_MD})
    yield idx
    idx.close()


def test_a_questionnaire_item_is_not_an_answer(typed_index):
    ans = ask(typed_index, "What is the maximum number of ships a harbour pilot guides per day?")
    assert ans.abstained and ans.citations == []
    step = ans.steps[-1]
    assert step["questions_skipped"] >= 1 and step["reason"]


def test_a_quantity_question_is_answered_by_the_sentence_that_states_one(typed_index):
    ans = ask(typed_index, "How many fishing boats were moored in the old harbour of Kinsale?")
    assert not ans.abstained and "214" in ans.answer, ans.answer
    assert ans.steps[-1]["wants_quantity"] is True
    assert all(c["asset"] == "harbour" for c in ans.citations)


@pytest.mark.parametrize("question, wanted", [
    ("How many summaries does the dataset provide?", True),
    ("What F1 score does the model obtain on BC2GM?", True),
    ("What ROUGE-2 F1 does PRIMERA obtain?", True),
    ("What is the maximum caseload per lawyer?", True),
    ("In which year was the lighthouse lit?", True),
    ("How much power does the sensor consume?", True),
    ("Which PDF parsing library does the recipe use?", False),
    ("What does the 'density' statistic measure?", False),
    ("Who wrote the editorial?", False),
    ("When was the light automated?", False),
    ("What is the name of the step that creates the metadata?", False),
])
def test_wants_quantity(question, wanted):
    assert at.wants_quantity(question) is wanted


def test_states_quantity_ignores_labels_references_and_the_questions_own_numbers():
    q = "What ROUGE-2 score does GPT-4 reach?"
    assert not at.states_quantity("As shown in Figure 3 and Table 2.1 [12, 14], GPT-4 reaches a high ROUGE-2.", q)
    assert at.states_quantity("GPT-4 reaches 27.32 ROUGE-2.", q)
    assert at.states_quantity("Twelve models are chained together.", "How many models?")
    assert at.is_question("What is the maximum caseload per lawyer at one time?")
    assert at.is_question('Is it "open"?)')
    assert not at.is_question("The caseload is 40 per lawyer.")



@pytest.mark.parametrize("question, unit, other", [
    ("What tightening torque does the handbook specify for an elastic stop nut?", "lb", "w"),
    ("How much power does the sensor consume?", "μw", "v"),
    ("What is the operating temperature of the pump?", "celsius", "kg"),
])
def test_measure_units_are_those_of_the_measure_asked_for(question, unit, other):
    units = at.measure_units(question)
    assert unit in units and other not in units


@pytest.mark.parametrize("question", [
    "How many pumps does the power plant run?",  # a count: "power" names the plant, not what is asked
    "What F1 score does the model obtain?",
    "Who sets the tightening torque of the nut?",  # asks for a person, not a quantity
])
def test_no_units_needed_for_counts_scores_and_names(question):
    assert at.measure_units(question) == frozenset()


def test_a_physical_measure_needs_a_number_with_its_unit():
    torque = "What tightening torque does the handbook specify for an elastic stop nut?"
    assert not at.states_quantity("Only three typical kinds of self-locking nuts are considered here.", torque)
    assert not at.states_quantity("Install the 2 washers in the order shown.", torque)
    assert at.states_quantity("Tighten the elastic stop nut to 25 in-lb.", torque)
    assert at.states_quantity("A torque of 12 N·m is applied.", torque)
    power = "How much power does the resistor-based sensor consume?"
    assert not at.states_quantity("Summary at VDD = 1.8 V and Vbias = 1.2 V of the implementations.", power)
    assert at.states_quantity("at the cost of higher power consumption (from 28.6 µW to 145 µW)", power)
    assert at.states_quantity("It draws 28.6µW.", power)
    assert at.states_quantity("Three nuts were counted.", "How many nuts are there?")  # a count needs no unit


def test_a_count_is_not_an_answer_to_a_torque_question(nut_index):
    ans = ask(nut_index, "What tightening torque does the handbook specify for installing an elastic stop nut?")
    assert ans.abstained and ans.citations == [], ans.answer
    assert "quantity" in ans.steps[-1]["reason"]


def test_a_torque_with_its_unit_is_an_answer(nut_index):
    ans = ask(nut_index, "What tightening torque does the manual specify for the wheel axle nut?")
    assert not ans.abstained and "35 ft-lb" in ans.answer, ans.answer
    assert all(c["asset"] == "axle" for c in ans.citations)


NUTS_MD = """# Self-locking nuts

Self-locking nuts are used where a connection is subject to severe vibration.
For the sake of simplicity, only three typical kinds of self-locking nuts are considered in this handbook:
the boots self-locking nut, the stainless steel self-locking nut and the elastic stop nut.
The elastic stop nut is a standard nut with the height increased to accommodate a fiber locking collar.
Installing an elastic stop nut requires that the bolt extends at least one thread past the collar.
"""

AXLE_MD = """# Wheel axle service manual

Clean the axle threads and inspect the wheel bearings before installing the axle nut.
The manual specifies a tightening torque of 35 ft-lb for the wheel axle nut, applied in one smooth pull.
Fit a new cotter pin after the axle nut is tightened.
"""


@pytest.fixture(scope="module")
def nut_index(tmp_path_factory):
    idx = _index_of(tmp_path_factory, "nuts", {"nuts.md": NUTS_MD, "axle.md": AXLE_MD})
    yield idx
    idx.close()


def _sentences(rows):
    """Sentences as score_sentences returns them (best first), from (place, text, score) rows."""
    places: dict[str, ev.Place] = {}
    out = []
    for i, (key, text, score) in enumerate(rows):
        p = places.setdefault(key, ev.Place(key, None, key, 1.0, rank=len(places) + 1))
        out.append(ev.Sentence(text, {"id": f"{key}-u{i}", "text": text}, p, dense=score, lex=score, score=score))
    return sorted(out, key=lambda s: -s.score)


def test_the_page_with_more_support_wins_over_one_lucky_sentence():
    sents = _sentences([
        ("a#p1", "The lucky sentence that matches the question best of all.", 0.70),
        ("b#p4", "The method is trained on the annotated corpus of reports.", 0.66),
        ("b#p4", "Its training corpus holds reports annotated by two experts.", 0.64),
        ("a#p1", "An unrelated line on the same page.", 0.20),
    ])
    support = page_support(sents)
    assert support["b#p4"] == pytest.approx(0.65) and support["a#p1"] == pytest.approx(0.45)
    chosen, why, info = choose_evidence("What is the method trained on?", sents, AskOptions())
    assert why is None and info["page"] == "b#p4"
    assert [s.place.key for s in chosen] == ["b#p4", "b#p4"]


def test_near_duplicate_units_are_cited_once():
    caption = "Figure 2: Pearson correlations between automatic metrics and human judgments on SQuALITY."
    sents = _sentences([
        ("a#p5", caption, 0.70),
        ("a#p5", caption.replace("Figure 2: ", ""), 0.69),  # the same caption read again as a text block
        ("a#p5", "BERTScore correlates best with the human judgments on SQuALITY.", 0.60),
    ])
    chosen, why, _ = choose_evidence("Which metric correlates best with human judgments?", sents, AskOptions())
    assert why is None and len(chosen) == 2 and "BERTScore" in chosen[1].text
    assert near_duplicate(caption, caption.upper()) and not near_duplicate(caption, "Figure 3: something else")


def test_min_margin_abstains_when_two_pages_tie():
    sents = _sentences([
        ("a#p1", "The survey counted the boats in the harbour in spring.", 0.61),
        ("b#p2", "The boats in the harbour were counted again in autumn.", 0.60),
    ])
    chosen, why, info = choose_evidence("When were the boats counted?", sents, AskOptions())
    assert why is None and chosen
    chosen, why, info = choose_evidence("When were the boats counted?", sents, AskOptions(min_margin=0.05))
    assert chosen == [] and "margin" in why and info["margin"] == pytest.approx(0.005)


LORA_TXT = """LoRA tuning adapts GPT2 medium by training low-rank matrices while the pretrained weights stay frozen.
With LoRA tuning, GPT2 medium converges within 3 epochs on every dataset.
"""

PARAMS_MD = """# Appendix B

Table 2: Comparison on the number of trainable parameters for different adaptation methods.

| Method | GPT2 medium | GPT2 large |
|---|---|---|
| Fine Tuning | 354,823,168 | 774,030,080 |
| Adapter Tuning | 25,303,040 | 47,437,312 |
| LoRA Tuning | 786,432 | 1,474,560 |
| Prompt Tuning | 270,336 | 337,920 |
"""


def test_is_table_row():
    assert ev.is_table_row("| LoRA Tuning | 786,432 | 1,474,560 |")
    assert ev.is_table_row("PRIMERA 53.73 27.32 30.89 42.01 416.3 45.51")
    assert not ev.is_table_row("Table 2: Comparison on the number of trainable parameters for 4 methods.")
    assert not ev.is_table_row("Ford agreed to pay $8.55 million in 2005 to settle the class action.")
    assert not ev.is_table_row("| Method | GPT2 medium | GPT2 large |")


def test_a_table_row_is_scored_with_its_tables_caption(tmp_path):
    """The row that answers holds the method's name and its values; what the values measure ("trainable
    parameters") is only in the caption. With the caption's terms the row outscores prose about the method."""
    import polyseek

    root = tmp_path / "corpus"
    root.mkdir()
    (root / "lora.txt").write_text(LORA_TXT, encoding="utf-8")
    (root / "appendix.md").write_text(PARAMS_MD, encoding="utf-8")
    idx = polyseek.open(tmp_path / "idx")
    assert idx.add([root]).indexed == 2
    q = "How many trainable parameters does LoRA tuning involve for GPT2 medium?"
    places = ev.search_places(idx, q)
    ev.load_units(idx, places)
    weights = ev.TermWeights(idx)
    sents = ev.score_sentences(idx, q, places, weights)
    assert "786,432" in sents[0].text, [s.text for s in sents[:3]]
    terms = ev.question_terms(q, weights)
    own = set(weights.tokens(sents[0].text)) & terms  # the row's own words: lora, tune
    assert "paramet" not in own  # ... and the caption's that it borrowed count too
    assert sents[0].lex > sum(weights.idf(t) for t in own) / sum(weights.idf(t) for t in terms)
    idx.close()


def _plot_pdf(path):
    """Page 1: a chart and its caption ("Figure 2: ..."), in words that barely match a question about it; page 2:
    text that discusses the plot in the question's own words ("In Figure 2, we plot ...")."""
    import io

    from fpdf import FPDF

    from tests.fixtures import bar_chart, png_bytes

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_margins(56, 56)
    pdf.add_page()
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Human evaluation of long summaries is slow and costly, so automatic metrics are often used "
                          "instead. We collected fine-grained judgments of faithfulness for two datasets.")
    pdf.ln(10)
    y = pdf.get_y()
    pdf.image(io.BytesIO(png_bytes(bar_chart())), x=56, y=y, w=240, h=128)
    pdf.set_y(y + 134)
    pdf.set_font("helvetica", "I", 10)
    pdf.multi_cell(0, 13, "Figure 2: Confidence intervals of the correlations, per metric and dataset.")
    pdf.add_page()
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "In Figure 2, we plot the Pearson correlations of the automatic metrics with human "
                          "judgments on both datasets. The Pearson correlations between automatic metrics and human "
                          "judgments vary widely between the two datasets. Automatic metrics therefore cannot "
                          "replace human judgments of faithfulness.")
    pdf.output(str(path))


def test_a_question_about_a_plot_cites_the_page_of_the_figure(tmp_path):
    """The text page wins on support (it repeats the question's words); the plot it refers to is on page 1, and
    the plot is the evidence: the answer cites the figure's caption there, by its figure unit."""
    import polyseek

    root = tmp_path / "corpus"
    root.mkdir()
    _plot_pdf(root / "metrics.pdf")
    (root / "garden.md").write_text("# Gardening\n\nTomatoes need full sun and regular watering.\n", encoding="utf-8")
    idx = polyseek.open(tmp_path / "idx")
    assert idx.add([root]).indexed == 2
    ans = ask(idx, "In the plot of Pearson correlations between automatic metrics and human judgments, "
                   "which metric correlates best?")
    step = ans.steps[-1]
    assert not ans.abstained and step["moved_from"] == "metrics#p2" and step["page"] == "metrics#p1", step
    assert {c["page"] for c in ans.citations} == {1} and ans.citations[0]["kind"] == "figure", ans.citations
    assert ans.answer.startswith("Figure 2:")
    idx.close()


def test_figure_and_table_labels():
    assert at.labels_in("Figure 7-26 of the handbook and Tab. 2 and (Figure 1-2)") == [
        ("figure", "7-26"), ("table", "2"), ("figure", "1-2")]
    assert at.asks_about("In LongEval's plot of Pearson correlations ...") == {"figure"}
    assert at.asks_about("In SciBERT's comparison table, what ...") == {"table"}
    assert at.asks_about("Which tool filtered the papers?") == frozenset()
    assert at.caption_label("Figure 2: 95% confidence intervals of Pearson correlations") == ("figure", "2")
    assert at.caption_label("Table 3. Performance of baseline models") == ("table", "3")
    assert at.caption_label("Figure 2 shows the correlations.") is None  # a sentence about it, not its caption
    assert at.caption_label("Figure 1-2 Existing row and column controls", figure_unit=True) == ("figure", "1-2")
    assert at.caption_label("In Figure 2, we plot the correlations.") is None


def _doc_sentences(rows):
    """Sentences (best first) on PDF pages: (asset, page, text, score, unit kind) rows."""
    places: dict[str, ev.Place] = {}
    out = []
    for i, (asset, page, text, score, kind) in enumerate(rows):
        p = places.get(f"{asset}#p{page}")
        if p is None:
            p = places[f"{asset}#p{page}"] = ev.Place(asset, page, f"{asset}#p{page}", 1.0, rank=len(places) + 1)
        out.append(ev.Sentence(text, {"id": f"{asset}-{page}-u{i}", "text": text, "kind": kind}, p, dense=score,
                               lex=score, score=score))
    return sorted(out, key=lambda s: -s.score)


def test_a_named_figure_is_cited_where_its_caption_is():
    sents = _doc_sentences([
        ("paper", 4, "The library includes several ready-to-use predictors for layers of a document.", 0.62, "block"),
        ("paper", 4, "Layers of a document can be accessed by the predictors in similar ways.", 0.60, "block"),
        ("paper", 1, "Figure 1: The library's document creation and representation.", 0.45, "figure"),
        ("other", 2, "Figure 1: An unrelated figure of another paper.", 0.50, "figure"),
    ])
    q = "Figure 1 of the paper shows stacked layers of a document. Which libraries are named on its left side?"
    chosen, why, info = choose_evidence(q, sents, AskOptions())
    assert why is None and info["moved_from"] == "paper#p4" and info["page"] == "paper#p1"
    assert chosen[0].text.startswith("Figure 1:") and {s.place.key for s in chosen} == {"paper#p1"}
    # without a label named or referred to, the page with the most support keeps the answer
    chosen, _, info = choose_evidence("Which predictors does the library include?", sents, AskOptions())
    assert info["page"] == "paper#p4" and "moved_from" not in info


def test_the_page_keeps_the_answer_when_it_holds_the_figure_or_table_itself():
    q = "In Table 2 of the paper, what F1 does the tagger reach on the test set?"
    row = _doc_sentences([
        ("paper", 8, "Tagger 91.2 88.7 80.1", 0.60, "block"),  # the table's own row, continued on page 8
        ("paper", 8, "As Table 2 shows, the tagger reaches the best F1 on the test set.", 0.58, "block"),
        ("paper", 7, "Table 2: Comparison of taggers on the test set.", 0.40, "block"),
    ])
    chosen, why, info = choose_evidence(q, row, AskOptions())
    assert why is None and info["page"] == "paper#p8" and "moved_from" not in info
    here = _doc_sentences([
        ("paper", 5, "In Figure 3, we plot F1 of the tagger against the size of the training set.", 0.60, "block"),
        ("paper", 5, "Figure 3: F1 against training set size.", 0.50, "figure"),
        ("paper", 9, "Figure 3: F1 against training set size.", 0.30, "block"),  # repeated in an appendix
    ])
    chosen, why, info = choose_evidence("In the plot of F1 against training size, where does it level off?", here,
                                        AskOptions())
    assert why is None and info["page"] == "paper#p5" and "moved_from" not in info
