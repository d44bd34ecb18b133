"""Byte-preserving edits of OpenSpec markdown: one task's checkbox or text, one proposal section.

Every byte outside the edited unit stays as it was (BOM, CRLF, trailing spaces, fences,
sections the store knows nothing about). Each edit is checked by parsing the result:
an edit that would change anything but its unit is refused rather than written.
"""

from __future__ import annotations

from ..errors import ValidationError
from .parse import (
    JS_SPACE,
    fence_mask,
    js_trim,
    match_task_line,
    parse_proposal,
    parse_tasks,
    sections,
)

_LINE_ENDS = "\n\r\u2028\u2029"


def set_task(
    text: str, position: int, *, done: bool | None = None, new_text: str | None = None
) -> str:
    """``text`` with task ``position`` (0-based) ticked, unticked and/or reworded.

    Only the box's content (written ``[x]`` or ``[ ]``) and the description change; the
    bullet, indent, spacing and line ending stay.
    """
    if new_text is not None and (
        any(c in new_text for c in _LINE_ENDS) or js_trim(new_text) != new_text or not new_text
    ):
        raise ValidationError("a task's text must be one non-empty line without surrounding spaces")
    lines = text.split("\n")
    seen = -1
    for index, line in enumerate(lines):
        found = match_task_line(line)
        if found is None:
            continue
        seen += 1
        if seen != position:
            continue
        head, box, tail = (
            line[: found.box_start],
            line[found.box_start : found.box_end],
            line[found.box_end :],
        )
        if done is not None and (found.marker is not None and found.marker.lower() == "x") != done:
            box = "[x]" if done else "[ ]"
            if tail[:1] in ("(", "["):
                # `- [x](...)` would be a link, not a task: the box needs a space after it.
                tail = " " + tail
        if new_text is not None:
            start = found.text_start - found.box_end
            end = found.text_end - found.box_end
            described = js_trim(tail[start:end])
            offset = tail.find(described, start) if described else start
            lead = tail[:offset]
            if not lead and not described:
                lead = " "
            tail = lead + new_text + tail[offset + len(described) :]
        lines[index] = head + box + tail
        result = "\n".join(lines)
        _check_task(text, result, position, done, new_text)
        return result
    raise ValidationError(f"there is no task at position {position} (the file has {seen + 1})")


def _check_task(
    before: str, after: str, position: int, done: bool | None, new_text: str | None
) -> None:
    old, new = parse_tasks(before), parse_tasks(after)
    wanted = old[position]
    if done is not None:
        wanted = type(wanted)(wanted.number, wanted.text, done, wanted.group, position, wanted.line)
    ok = len(old) == len(new) and new[position].done == wanted.done
    if new_text is not None:
        ok = ok and new[position].text == new_text
    else:
        ok = ok and new[position].text == wanted.text
    if not ok:
        raise ValidationError(
            "that task edit would change other tasks of the file; edit the file by hand"
        )


def _join(pieces: list[str], ends: list[str], start: int, stop: int) -> str:
    return "".join(pieces[k] + ends[k] for k in range(start, stop))


def set_section(text: str, section: str, body: str) -> str:
    """``text`` with the body of proposal section ``section`` (case-insensitive) replaced.

    The header line and the blank lines around the body stay; the new body takes the
    file's line ending. A section that does not exist is appended as ``## section``.
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    content = text[len(bom) :]
    # Lines with their own endings, split as OpenSpec normalises them (CRLF, CR, LF).
    pieces: list[str] = []
    ends: list[str] = []
    i = 0
    n = len(content)
    start = 0
    while i < n:
        c = content[i]
        if c == "\n" or c == "\r":
            pieces.append(content[start:i])
            if c == "\r" and i + 1 < n and content[i + 1] == "\n":
                ends.append("\r\n")
                i += 2
            else:
                ends.append(c)
                i += 1
            start = i
        else:
            i += 1
    pieces.append(content[start:])
    ends.append("")
    newline = next((e for e in ends if e), "\n")
    new_body = js_trim(body.replace("\r\n", "\n").replace("\r", "\n"))
    body_lines = new_body.split("\n") if new_body else []
    mask = fence_mask(pieces)
    target = next((s for s in sections(pieces, mask) if s.title.lower() == section.lower()), None)
    if target is None:
        if not new_body:
            return text
        tail = "" if (not content or (ends[-2:-1] and pieces[-1] == "")) else newline
        prefix = text + tail + (newline if js_trim(content) else "")
        result = prefix + newline.join([f"## {section}", "", *body_lines]) + newline
    else:
        region = range(target.start, target.end)
        filled = [k for k in region if js_trim(pieces[k]) != ""]
        if filled:
            first, last = filled[0], filled[-1]
            keep_end = ends[last]
            replacement = [line + newline for line in body_lines]
            if replacement:
                replacement[-1] = body_lines[-1] + keep_end
            before = _join(pieces, ends, 0, first)
            after = _join(pieces, ends, last + 1, len(pieces))
            result = bom + before + "".join(replacement) + after
        else:
            if not body_lines:
                return text
            h = target.header
            before = _join(pieces, ends, 0, h + 1)
            if not ends[h]:
                before += newline
            after = _join(pieces, ends, h + 1, len(pieces))
            inserted = newline + newline.join(body_lines) + newline
            if (
                after
                and js_trim(pieces[h + 1] if h + 1 < len(pieces) else "") == ""
                and target.end > h + 1
                and target.end < len(pieces)
            ) or (after.strip(JS_SPACE) and not after.startswith(("\n", "\r"))):
                inserted += newline
            result = bom + before + inserted + after
    got = parse_proposal(result).sections.get(section.lower())
    if got != new_body:
        raise ValidationError(
            f"the new body of section {section!r} would change the proposal's structure "
            "(a header or an unclosed code fence in it); edit the file by hand"
        )
    return result
