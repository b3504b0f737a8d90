"""Benchmark tables into markdown files, between ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->``.

``romp-ros bench --doc`` and every script in ``bench/`` write their tables this way, so a
re-run replaces its own table and leaves the prose around it alone.
"""

from __future__ import annotations

from pathlib import Path
import re

_NAME = re.compile(r'[a-z0-9][a-z0-9_-]*')


def write_doc_section(doc: str | Path, text: str, name: str = 'compare-bench',
                      heading: str = '') -> None:
    """Put ``text`` between the ``<!-- NAME:begin / end -->`` markers of a markdown file.

    Args:
        doc: the markdown file (created when missing).
        text: what goes between the markers.
        name: the markers' name: lower-case letters, digits, '-' and '_'.
        heading: markdown written before the markers when the file lacks them (they are
            then appended at its end).

    Raises:
        ValueError: a bad name, or a file with the begin marker but not the end one after it.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f'doc section name {name!r}: use lower-case letters, digits, - and _')
    begin, end = f'<!-- {name}:begin -->', f'<!-- {name}:end -->'
    doc = Path(doc)
    content = doc.read_text(encoding='utf-8') if doc.exists() else '# Performance\n'
    if begin not in content:
        content = content.rstrip('\n') + '\n\n' + (heading.strip('\n') + '\n\n' if heading
                                                   else '') + f'{begin}\n{end}\n'
    head, rest = content.split(begin, 1)
    if end not in rest:
        raise ValueError(f'{doc}: {begin} has no {end} after it; add it where the section ends')
    _, tail = rest.split(end, 1)
    doc.write_text(f'{head}{begin}\n{text}\n{end}{tail}', encoding='utf-8')
