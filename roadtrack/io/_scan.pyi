"""Types of the compiled scanner of annotation entries (``_scan.c`` says what each part is)."""

def scan_entry(
    text: bytes, max_frames: int,
) -> None | tuple[
    int, int, int, list[str], bytes, bytes, bytes, bytes, list[str],
    tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes, bytes], ...],
]: ...
