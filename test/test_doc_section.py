"""Benchmark tables land between their own markers and nothing else in the file changes."""

from __future__ import annotations

import pytest

from romp_ros.cli.doc_section import write_doc_section


def test_a_section_is_replaced_in_place_and_appended_when_missing(tmp_path):
    doc = tmp_path / 'perf.md'
    doc.write_text('# Performance\n\nintro\n\n<!-- speed:begin -->\nold table\n'
                   '<!-- speed:end -->\n\nprose after\n', encoding='utf-8')
    write_doc_section(doc, '| a | b |', name='speed')
    assert doc.read_text(encoding='utf-8') == (
        '# Performance\n\nintro\n\n<!-- speed:begin -->\n| a | b |\n<!-- speed:end -->\n\n'
        'prose after\n')
    write_doc_section(doc, 'new', name='memory', heading='## Memory\n\nWhat it holds.')
    text = doc.read_text(encoding='utf-8')
    assert text.endswith('prose after\n\n## Memory\n\nWhat it holds.\n\n'
                         '<!-- memory:begin -->\nnew\n<!-- memory:end -->\n')
    write_doc_section(doc, 'newer', name='memory', heading='## Memory\n\nWhat it holds.')
    assert doc.read_text(encoding='utf-8') == text.replace('\nnew\n', '\nnewer\n')
    fresh = tmp_path / 'new.md'
    write_doc_section(fresh, 'x', name='speed')
    assert fresh.read_text(encoding='utf-8') == (
        '# Performance\n\n<!-- speed:begin -->\nx\n<!-- speed:end -->\n')


def test_bad_names_and_broken_markers_are_refused_with_the_file_untouched(tmp_path):
    doc = tmp_path / 'perf.md'
    original = '# Performance\n\n<!-- speed:begin -->\ntable, end marker lost\n'
    doc.write_text(original, encoding='utf-8')
    with pytest.raises(ValueError, match='has no <!-- speed:end --> after it'):
        write_doc_section(doc, 'new', name='speed')
    with pytest.raises(ValueError, match='lower-case letters'):
        write_doc_section(doc, 'new', name='Speed -->')
    assert doc.read_text(encoding='utf-8') == original
