"""`pain serve` options that are checked before anything starts."""

import pytest

from web.cli import main


@pytest.mark.parametrize(
    "port, message",
    [
        ("70000", "argument --port: must be from 1 to 65535, got 70000"),
        ("0", "argument --port: must be from 1 to 65535, got 0"),
        ("eighty", "argument --port: must be an integer from 1 to 65535, got 'eighty'"),
    ],
)
def test_serve_rejects_invalid_port(port, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", port])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
