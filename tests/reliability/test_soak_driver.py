"""The soak driver's command line refuses bad input with a clear message."""

from __future__ import annotations

import pytest

from . import soak


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--soak-ops", "0"], "'0' must be at least 1"),
        (["--soak-ops", "many"], "'many' is not a whole number"),
        (["--workers", "-2"], "'-2' must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_and_say_what_is_wrong(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        soak.main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
