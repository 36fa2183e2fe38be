import signal

from td3drive.core import verdicts


def test_exit_codes_are_the_contracts():
    assert (verdicts.EXIT_OK, verdicts.EXIT_NO_GO, verdicts.EXIT_BAD_INPUT) == (0, 1, 2)
    assert verdicts.EXIT_SIGINT == 128 + signal.SIGINT == 130 and verdicts.EXIT_SIGTERM == 143


def test_verdict_exit_with_and_without_strict():
    assert verdicts.verdict_exit(verdicts.GO) == 0
    assert verdicts.verdict_exit(verdicts.GO_WITH_WARNINGS) == 0
    assert verdicts.verdict_exit(verdicts.GO_WITH_WARNINGS, strict=True) == 1
    assert verdicts.verdict_exit(verdicts.NO_GO) == 1 and verdicts.verdict_exit(verdicts.GO, strict=True) == 0
