"""What kind of answer a question wants, and whether a sentence can be one: the answer-type check of factoid QA
systems (Moldovan et al. 2000, LASSO; Prager et al. 2000, predictive annotation), reduced to the one type that
plain text shows reliably without a tagger: a quantity, with its unit when it is a physical measure. "How many ...",
"what F1 score ...", "what is the maximum caseload ..." want a number; a sentence that states none (once
figure/table labels, bracketed references and the question's own numbers are set aside) cannot answer them, however
well it matches the question's words. "What tightening torque ..." wants a number with a unit of torque.

Also here: which figure or table a question is about (the label it names, or the words it asks with: plot, chart,
table...), and whether a sentence is a caption, so the answer can cite the page the figure is on (answer.py).
"""

from __future__ import annotations

import re

from .evidence import normalize

# Nouns (and the adjectives maximum/minimum/average...) that name a measured or counted value. General English and
# the usual names of evaluation scores; a question asking "what/which <up to four words with one of these>" wants
# a number.
MEASURES = frozenset("""
number numbers amount percentage percent proportion fraction share score scores rate ratio value values size count
total accuracy precision recall f1 bleu rouge auc map ndcg mrr perplexity error loss temperature torque pressure weight
mass length height width depth distance duration speed frequency voltage current power energy cost price year date
age budget capacity throughput latency maximum minimum average mean median sensitivity efficiency gain dimension
dimensions population salary fee tax dose dosage""".split())
_HOW = re.compile(r"\bhow\s+(many|much|long|large|big|old|often|far|high|fast|tall|wide|deep|heavy|small|low)\b", re.I)
_YEAR = re.compile(r"\b(what|which)\s+year\b", re.I)  # not "when": "in spring", "after the war" answer it too
_WHAT = re.compile(r"\b(what|which)\b((?:\s+[\w\-]+){1,5})", re.I)
_VERBS = {"does", "do", "did", "is", "are", "was", "were", "has", "have", "had", "can", "could", "will", "would"}
_ARTICLES = {"the", "a", "an"}

NUMBER_WORDS = frozenset("""one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
billion trillion dozen half twice thrice""".split())
# "Figure 3", "Table 2.1", "Section 4", "Eq. 5", "[12]", "[3, 4]": numbers that label things, not values.
_LABEL = re.compile(r"\b(fig(?:ure)?s?|tables?|sections?|sec|eqs?|equations?|appendix|chapter|pages?|steps?|rq|q)\.?"
                    r"\s*[A-Z]?\d+(?:[.\-]\d+)*", re.I)
# Units of the physical measures a question can ask for: a number that answers "what torque" carries one of them.
# Measures whose values are often unitless in documents (length in words, duration in steps, size in tokens) are
# left out: for them any number will do.
_TORQUE = frozenset("nm newton newtons lb lbs lbf pound pounds ft kgf kgm ozf inlb ftlb".split())  # "N·m", "in-lb"
_POWER = frozenset("w mw μw uw kw gw watt watts milliwatt milliwatts microwatt microwatts kilowatt kilowatts hp "
                   "horsepower".split())
_VOLTAGE = frozenset("v mv kv μv uv volt volts millivolt millivolts kilovolt kilovolts".split())
_PRESSURE = frozenset("pa kpa mpa gpa psi bar mbar atm torr mmhg pascal pascals".split())
_ENERGY = frozenset("j kj mj wh kwh mwh cal kcal joule joules calorie calories ev".split())
_TEMPERATURE = frozenset("c f k celsius fahrenheit kelvin degree degrees".split())
_FREQUENCY = frozenset("hz khz mhz ghz hertz rpm".split())
_MASS = frozenset("g kg mg μg ug lb lbs oz pound pounds ounce ounces ton tons tonne tonnes gram grams kilogram "
                  "kilograms".split())
UNITS = {"torque": _TORQUE, "power": _POWER, "wattage": _POWER, "voltage": _VOLTAGE, "pressure": _PRESSURE,
         "energy": _ENERGY, "temperature": _TEMPERATURE, "frequency": _FREQUENCY, "weight": _MASS, "mass": _MASS}
_ASKED = re.compile(r"\b(?:what|which|how\s+much)\b((?:\s+[\w\-]+){1,5})", re.I)
_GLUED = re.compile(r"^(\d+)([^\W\d_]+)$")  # "1.8V" normalizes to "1 8v": a number with its unit attached
_REF = re.compile(r"\[[\d,\s\-\u2013]+\]")


def wants_quantity(question: str) -> bool:
    """True when the question asks for a number (a count, an amount, a score, a year...)."""
    if _HOW.search(question) or _YEAR.search(question):
        return True
    for m in _WHAT.finditer(question):
        words = [w.lower().strip("-") for w in m.group(2).split()]
        if words and words[0] in _VERBS and len(words) > 2 and words[1] in _ARTICLES:
            words = words[2:]  # "what is the maximum caseload": look past "is the"
        for w in words:
            if w in _VERBS:
                break
            if w in MEASURES or w.split("-")[0] in MEASURES:
                return True
    return False


def measure_units(question: str) -> frozenset[str]:
    """The units that can state the physical measure a quantity question asks for ("what tightening torque",
    "how much power"), or an empty set when the words it asks with name none of UNITS (a count, a score, a share:
    no unit needed). Only the words right after "what"/"which"/"how much" count: "how many pumps does the power
    plant run" asks for a count."""
    if not wants_quantity(question):
        return frozenset()
    out: set[str] = set()
    for m in _ASKED.finditer(question):
        words = [w.lower().strip("-") for w in m.group(1).split()]
        if len(words) > 2 and words[0] in _VERBS and words[1] in _ARTICLES:
            words = words[2:]  # "what is the operating temperature"
        for w in words:
            if w in _VERBS:
                break
            out |= UNITS.get(w, frozenset())
    return frozenset(out)


def states_quantity(text: str, question: str = "") -> bool:
    """True when `text` holds a number (digits or a number word) that is not a label ("Table 2"), a reference
    ("[12]") or a number the question itself names (its "GPT-4", "ROUGE-2"). When the question names a physical
    measure (measure_units), the number must carry one of its units ("28.6 µW", "1.8V", "25 in-lb", "12 N·m"): a
    count of nuts does not state a torque."""
    own = set(normalize(question).split())
    units = measure_units(question)
    words = normalize(_REF.sub(" ", _LABEL.sub(" ", text))).split()
    for i, w in enumerate(words):
        if w in own:
            continue
        if w in NUMBER_WORDS or any(c.isdigit() for c in w):
            if not units:
                return True
            m = _GLUED.match(w)
            after = words[i + 1:i + 3]
            if (m and m.group(2) in units) or (after and (after[0] in units or "".join(after) in units)):
                return True
    return False


def is_question(text: str) -> bool:
    """A sentence that asks rather than states (a questionnaire item, a research question): it answers nothing."""
    return text.rstrip().rstrip("\"')]").endswith("?")


# -- questions about a figure or a table -------------------------------------------------------------------
# A question about a figure ("In LongEval's plot of ...", "Figure 1 of the papermage paper shows ...") is answered
# by the figure, and the figure is where its caption is: a page of text that discusses it ("In Figure 2, we plot
# ...") repeats the question's words but is not the evidence.
_ASKS_FIGURE = re.compile(r"\b(figures?|fig\.|plots?|charts?|graphs?|diagrams?|illustrations?|histograms?)\b", re.I)
_ASKS_TABLE = re.compile(r"\btables?\b", re.I)
_NAMED = re.compile(r"\b(fig(?:ure)?s?\.?|tables?|tab\.)\s*([A-Z]?\d+(?:[.\-]\d+)*)", re.I)
# A caption: the label first, then ':' '.' '|' (or nothing else, when the extractor kept it as a figure unit).
_CAPTION = re.compile(r"^\s*(fig(?:ure)?\.?|table|tab\.)\s*([A-Z]?\d+(?:[.\-]\d+)*)\s*([:.|])?", re.I)


def _label(word: str, number: str) -> tuple[str, str]:
    return ("table" if word.lower().startswith("tab") else "figure", number.rstrip(".-"))


def labels_in(text: str) -> list[tuple[str, str]]:
    """The figure and table labels a text names, as ("figure" | "table", number): "Figure 7-26" -> ("figure",
    "7-26"), "Tab. 2" -> ("table", "2")."""
    return [_label(m.group(1), m.group(2)) for m in _NAMED.finditer(text)]


def asks_about(question: str) -> frozenset[str]:
    """Which of "figure" and "table" a question asks about (by the words it uses: plot, chart, diagram, table...)."""
    out = {k for k, _ in labels_in(question)}
    if _ASKS_FIGURE.search(question):
        out.add("figure")
    if _ASKS_TABLE.search(question):
        out.add("table")
    return frozenset(out)


def caption_label(text: str, figure_unit: bool = False) -> tuple[str, str] | None:
    """The label a caption starts with ("Figure 2: 95% confidence intervals ..." -> ("figure", "2")), or None when
    `text` is not a caption. A sentence that merely starts with a label ("Figure 2 shows ...") is not one unless
    the extractor kept it as a figure's own unit (`figure_unit`)."""
    m = _CAPTION.match(text)
    if not m or not (m.group(3) or figure_unit):
        return None
    return _label(m.group(1), m.group(2))
