from collections.abc import Callable

from guardd.core.batch import Health, Parsed

class Scanner:
    def __init__(
        self,
        top: int,
        series: dict[bytes, int],
        new_series: Callable[[str | None, str | None, str | None, bytes], int | None],
        line_key: Callable[[bytes, str, int], str],
        health_row: Callable[[str, int, int, bool | None, int | None, float | None, str | None], Health],
    ) -> None: ...
    def scan(self, data: bytes, pos: int, base: int, fp: str, out: Parsed) -> tuple[int, int, int]: ...
