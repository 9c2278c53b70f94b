"""Rules of the seed dialect that are more than frame shapes. Pure.

The seed's protocol has clients write their own name before each line: its sequence diagram
shows ``Client->>Server: MSG|Alice: Hello!`` answered by ``MSG|Alice: Hello!``. A server that
stamps every line with the sender's name would relay that as ``MSG|Alice: Alice: Hello!``, so
the label the client wrote is removed first (see docs/protocol.md, "Seed clients").
"""

from __future__ import annotations

from richchat.core.protocol.text import MAX_NICK_LEN, fold_name

#: How far into a line the ``": "`` that ends a label is looked for. NFKC composes at most a
#: few code points into one (a Hangul syllable from three jamo), so a label that folds to a
#: nickname of MAX_NICK_LEN characters is well within four times that.
LABEL_SCAN = 4 * MAX_NICK_LEN + 2


def strip_own_label(text: str, name: str) -> str:
    """``text`` without a leading ``<name>: ``, the sender's own label; else ``text`` as is.

    The label is compared with ``name`` after NFKC normalisation and case-folding (the rule
    that makes nicknames unique), so ``ALICE: hi`` from ``alice`` is ``hi``. Only one label
    is removed, and only the sender's own: ``bob: hi`` from ``alice`` stays text, to be
    stamped ``alice: bob: hi`` (nobody can speak as someone else).
    """
    end = text.find(": ", 0, LABEL_SCAN)
    if end <= 0:
        return text
    label = text[:end]
    if label == name or fold_name(label) == fold_name(name):
        return text[end + 2 :]
    return text
