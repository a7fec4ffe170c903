from app.web.log_lines import MAX_SHOWN_LINE_CHARS, LogLine, line_window, select_lines

LOG = b"".join(f"line {number}\n".encode() for number in range(1, 101))


def blocks_of(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def test_select_lines_finds_lines_across_block_boundaries():
    for size in (1, 7, 64, 10_000):
        lines = select_lines(blocks_of(LOG, size), [range(9, 12), range(99, 102)])
        assert lines == [
            LogLine(9, "line 9"),
            LogLine(10, "line 10"),
            LogLine(11, "line 11"),
            LogLine(99, "line 99"),
            LogLine(100, "line 100"),
        ]


def test_select_lines_stops_reading_after_the_last_wanted_line():
    consumed = []

    def blocks():
        for block in blocks_of(LOG, 10):
            consumed.append(block)
            yield block

    select_lines(blocks(), [range(1, 3)])
    assert len(consumed) < 5


def test_the_last_line_without_a_newline_is_a_line():
    assert select_lines([b"a\nb"], [range(2, 3)]) == [LogLine(2, "b")]


def test_lines_are_shown_as_people_read_them():
    data = b"\x1b[31mred\x1b[0m\nstep 1\rstep 2\rstep 3\n"
    assert select_lines([data], [range(1, 3)]) == [LogLine(1, "red"), LogLine(2, "step 3")]


def test_a_huge_line_is_cut_and_the_numbering_stays_right():
    data = b"first\n" + b"x" * 1_000_000 + b"\nthird\n"
    lines = select_lines(blocks_of(data, 4096), [range(1, 4)])
    assert [line.number for line in lines] == [1, 2, 3]
    assert len(lines[1].text) < MAX_SHOWN_LINE_CHARS + 100
    assert lines[2].text == "third"


def test_line_window_says_whether_more_lines_follow():
    lines, more = line_window([LOG], first=95, count=5)
    assert [line.number for line in lines] == [95, 96, 97, 98, 99]
    assert more
    lines, more = line_window([LOG], first=96, count=5)
    assert lines[-1].number == 100
    assert not more


def test_no_ranges_means_no_lines():
    assert select_lines([LOG], []) == []
